//! Host faults: a crash stops the host's software at once and drops every store write since
//! the last flush (`MemStore::crash`); a restart runs the same software on the same store
//! with a fresh RNG seed (a fresh Yrs client id). A graceful stop (a member leaving) flushes
//! first. Long offline periods are crashes or stops whose restart comes much later.

use crate::harness::Cluster;

impl Cluster {
    /// Crashes `node`: its software stops and unflushed writes are lost.
    pub fn crash(&mut self, node: usize) {
        if !self.nodes[node].up {
            return;
        }
        let name = self.nodes[node].name.clone();
        self.sim().crash(name.as_str());
        let lost = self.nodes[node].shared.store.unflushed();
        self.nodes[node].shared.store.crash();
        self.nodes[node].up = false;
        self.event(format!("crash {name} ({lost} unflushed batches lost)"));
    }

    /// Restarts a crashed or stopped node on its store.
    pub fn restart(&mut self, node: usize) {
        if self.nodes[node].up {
            return;
        }
        self.renew_jobs(node);
        let name = self.nodes[node].name.clone();
        self.sim().bounce(name.as_str());
        self.nodes[node].up = true;
        self.nodes[node].left = false;
        self.active.restart_at.remove(&node);
        self.event(format!("restart {name}"));
    }

    /// Stops `node` gracefully (it flushes and closes its connections); it stays down until
    /// restarted explicitly or by the liveness phase.
    pub fn stop(&mut self, node: usize) {
        if !self.nodes[node].up {
            return;
        }
        let flushed = self.call(node, |h| async move { h.shutdown().await });
        let name = self.nodes[node].name.clone();
        self.event(format!("{name} shuts down: {flushed:?}"));
        self.sim().crash(name.as_str());
        self.nodes[node].up = false;
        self.nodes[node].left = true;
    }

    /// Restarts the crashed nodes whose offline time is over.
    pub fn restart_due(&mut self) {
        let now = self.now();
        let due: Vec<usize> = self
            .active
            .restart_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            self.restart(n);
        }
    }
}
