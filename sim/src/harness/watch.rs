//! Watch views on the driver's side (`checkers/watch_views.rs`): a long-running job on a
//! node subscribes to the shared space's watch stream, then queries every object, and
//! folds each event into a [`WatchView`] the driver shares; at the end the view is judged
//! against what the node holds. A view whose node restarted meanwhile is not judged (its
//! stream ended with the old incarnation).

use std::cell::RefCell;
use std::rc::Rc;

use echo_actors::node::QueryRequest;

use super::Cluster;
use crate::checkers::watch_views::{judge, WatchView};

/// A view kept by a job on one node.
pub struct WatchedNode {
    node: usize,
    incarnation: u32,
    view: Rc<RefCell<WatchView>>,
}

impl Cluster {
    /// Starts a watch view of the shared space on `node`.
    pub fn watch_view(&mut self, node: usize) -> WatchedNode {
        let space = self.space.clone().unwrap_or_default();
        let view = Rc::new(RefCell::new(WatchView::default()));
        let shared = view.clone();
        let incarnation = self.nodes[node].shared.incarnation.get();
        // Never answered: the job runs as long as the node does.
        let _pending = self.submit(node, move |h| async move {
            let Ok(mut events) = h.watch(&space, None).await else {
                return;
            };
            let everything = QueryRequest {
                include_deleted: true,
                ..Default::default()
            };
            let Ok(objects) = h.query(&space, everything).await else {
                return;
            };
            shared.borrow_mut().start(objects);
            while let Some(event) = events.recv().await {
                shared.borrow_mut().event(event.id, event.object);
            }
            shared.borrow_mut().ended = true;
        });
        let name = self.nodes[node].name.clone();
        self.event(format!("{name} keeps a watch view"));
        WatchedNode {
            node,
            incarnation,
            view,
        }
    }

    /// Judges a watch view against what its node holds now (after the liveness phase).
    pub fn check_watch_view(&mut self, watched: &WatchedNode) {
        let n = watched.node;
        let name = self.nodes[n].name.clone();
        if !self.nodes[n].up || self.nodes[n].shared.incarnation.get() != watched.incarnation {
            self.event(format!("{name} restarted: its watch view is not judged"));
            return;
        }
        let space = self.space.clone().unwrap_or_default();
        let held = self.call(n, move |h| async move {
            let everything = QueryRequest {
                include_deleted: true,
                ..Default::default()
            };
            h.query(&space, everything).await.ok()
        });
        let Some(Some(held)) = held else {
            self.violation("watch", format!("{name} did not answer the final query"));
            return;
        };
        let view = watched.view.borrow().clone();
        match judge(&view, &held) {
            None => self.event(format!(
                "{name}'s watch view agrees ({} events, {} objects)",
                view.events,
                held.len()
            )),
            Some(detail) => self.violation("watch", format!("{name}: {detail}")),
        }
    }
}
