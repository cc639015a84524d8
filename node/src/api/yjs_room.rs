//! Awareness (presence, cursors) among the Yjs clients of one space on this node.
//!
//! Contract: one room per space, with yrs' own `Awareness` holding the latest state of
//! every client id. An update from a connection is applied and relayed to the space's other
//! connections; the client ids it announced are remembered, and when the connection goes
//! their states are removed and the removal is relayed. A newcomer and a query-awareness
//! get every known state. Awareness never crosses to peers (it is not stored or
//! replicated). A relay queue that is full drops the message (awareness is lossy by
//! design: the next update supersedes it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::mpsc;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::{ClientID, Doc};

use super::yjs_session::YjsSession;

/// Awareness messages queued per connection.
const QUEUE: usize = 256;

struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    clients: BTreeSet<ClientID>,
}

struct Room {
    awareness: Awareness,
    conns: BTreeMap<u64, Conn>,
}

impl Room {
    fn full_state(&self) -> Option<Vec<u8>> {
        let update = self.awareness.update().ok()?;
        (!update.clients.is_empty()).then(|| YjsSession::awareness(update))
    }

    fn relay(&self, from: u64, message: &[u8]) {
        for (id, conn) in &self.conns {
            if *id != from {
                let _ = conn.tx.try_send(message.to_vec());
            }
        }
    }
}

/// The awareness rooms of the node, by space key (app data of the API).
#[derive(Default)]
pub struct Rooms {
    inner: Mutex<(u64, BTreeMap<String, Room>)>,
}

impl Rooms {
    fn with<R>(&self, f: impl FnOnce(&mut u64, &mut BTreeMap<String, Room>) -> R) -> R {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (next, rooms) = &mut *guard;
        f(next, rooms)
    }

    /// A new connection to `space`: its id, its queue of relayed messages, and the current
    /// states to send it first (if any).
    pub fn join(&self, space: &str) -> (u64, mpsc::Receiver<Vec<u8>>, Option<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.with(|next, rooms| {
            *next += 1;
            let room = rooms.entry(space.to_owned()).or_insert_with(|| Room {
                awareness: Awareness::new(Doc::new()),
                conns: BTreeMap::new(),
            });
            room.conns.insert(
                *next,
                Conn {
                    tx,
                    clients: BTreeSet::new(),
                },
            );
            (*next, rx, room.full_state())
        })
    }

    /// An awareness update from connection `conn`: applied and relayed to the others.
    pub fn update(&self, space: &str, conn: u64, update: AwarenessUpdate) {
        self.with(|_, rooms| {
            let Some(room) = rooms.get_mut(space) else {
                return;
            };
            if let Some(c) = room.conns.get_mut(&conn) {
                c.clients.extend(update.clients.keys().copied());
            }
            let message = YjsSession::awareness(update.clone());
            if room.awareness.apply_update(update).is_ok() {
                room.relay(conn, &message);
            }
        });
    }

    /// Every known state of `space`, as one message (`None` if there is none).
    pub fn query(&self, space: &str) -> Option<Vec<u8>> {
        self.with(|_, rooms| rooms.get(space).and_then(Room::full_state))
    }

    /// Connection `conn` went: its clients' states are removed and the others told.
    pub fn leave(&self, space: &str, conn: u64) {
        self.with(|_, rooms| {
            let Some(room) = rooms.get_mut(space) else {
                return;
            };
            if let Some(gone) = room.conns.remove(&conn) {
                for client in &gone.clients {
                    room.awareness.remove_state(*client);
                }
                if let Ok(update) = room.awareness.update_with_clients(gone.clients) {
                    if !update.clients.is_empty() {
                        room.relay(conn, &YjsSession::awareness(update));
                    }
                }
            }
            if room.conns.is_empty() {
                rooms.remove(space);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    use yrs::sync::Message;
    use yrs::updates::decoder::Decode;

    fn state(client: u64, clock: u32, json: &str) -> AwarenessUpdate {
        let mut clients = std::collections::HashMap::new();
        clients.insert(
            ClientID::new(client),
            AwarenessUpdateEntry {
                clock,
                json: Arc::from(json),
            },
        );
        AwarenessUpdate { clients }
    }

    fn decoded(bytes: &[u8]) -> AwarenessUpdate {
        match Message::decode_v1(bytes).expect("decodes") {
            Message::Awareness(update) => update,
            other => panic!("not awareness: {other:?}"),
        }
    }

    #[test]
    fn relayed_to_others_and_cleared_when_a_client_goes() {
        let rooms = Rooms::default();
        let (a, mut a_rx, none) = rooms.join("s");
        assert!(none.is_none());
        let (b, mut b_rx, _) = rooms.join("s");
        rooms.update("s", a, state(11, 1, r#"{"user":"ada"}"#));
        let relayed = decoded(&b_rx.try_recv().expect("b hears a"));
        assert_eq!(
            &*relayed.clients[&ClientID::new(11)].json,
            r#"{"user":"ada"}"#
        );
        assert!(a_rx.try_recv().is_err(), "not echoed to the sender");
        // A newcomer gets the current states.
        let (c, _c_rx, initial) = rooms.join("s");
        assert!(initial.is_some());
        assert!(rooms.query("s").is_some());
        rooms.leave("s", a);
        let removal = decoded(&b_rx.try_recv().expect("b hears the removal"));
        assert_eq!(&*removal.clients[&ClientID::new(11)].json, "null");
        assert!(rooms.query("s").is_none());
        rooms.leave("s", b);
        rooms.leave("s", c);
        assert!(rooms.with(|_, r| r.is_empty()));
    }
}
