//! A counting UDP relay: how `replicate` measures wire bytes without root (no tcpdump) and
//! before the nodes count their own traffic (issue 11, item 6).
//!
//! The relay listens on a loopback port; the first peer that sends to it is the client
//! (node B, started with `--peer RELAY`), and everything it sends goes on to the target
//! (node A) from a socket of the relay's, and back. It counts UDP payload bytes and
//! datagrams per direction, which is what a capture of the QUIC packets would count (a
//! datagram sent with GSO arrives as separate datagrams here). It costs one extra hop per
//! datagram (two syscalls on the relay's threads).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

/// Bytes and datagrams counted so far, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// From the client (B) to the target (A).
    pub to_target_bytes: u64,
    pub to_target_datagrams: u64,
    /// From the target (A) to the client (B).
    pub to_client_bytes: u64,
    pub to_client_datagrams: u64,
}

impl Counts {
    pub fn bytes(&self) -> u64 {
        self.to_target_bytes + self.to_client_bytes
    }
    pub fn datagrams(&self) -> u64 {
        self.to_target_datagrams + self.to_client_datagrams
    }
    /// What was counted between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            to_target_bytes: self.to_target_bytes - earlier.to_target_bytes,
            to_target_datagrams: self.to_target_datagrams - earlier.to_target_datagrams,
            to_client_bytes: self.to_client_bytes - earlier.to_client_bytes,
            to_client_datagrams: self.to_client_datagrams - earlier.to_client_datagrams,
        }
    }
}

#[derive(Default)]
struct Counters {
    to_target_bytes: AtomicU64,
    to_target_datagrams: AtomicU64,
    to_client_bytes: AtomicU64,
    to_client_datagrams: AtomicU64,
}

/// The running relay; stops (and joins its threads) on drop.
pub struct Relay {
    /// Where the client should send.
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// How often the relay threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

impl Relay {
    pub fn start(target: SocketAddr) -> Result<Relay> {
        let front = UdpSocket::bind("127.0.0.1:0").context("bind the relay's front socket")?;
        let back = UdpSocket::bind("127.0.0.1:0").context("bind the relay's back socket")?;
        back.connect(target)
            .with_context(|| format!("relay: connect to {target}"))?;
        front.set_read_timeout(Some(POLL))?;
        back.set_read_timeout(Some(POLL))?;
        let addr = front.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();

        let (f, b) = (front.try_clone()?, back.try_clone()?);
        let (c, s, cl) = (counters.clone(), stop.clone(), client.clone());
        let up = thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = f.recv_from(&mut buf) else {
                    continue;
                };
                *cl.lock().unwrap_or_else(|e| e.into_inner()) = Some(from);
                // Counted before it is sent, so a reader that saw it arrive sees it counted.
                c.to_target_bytes.fetch_add(n as u64, Ordering::Relaxed);
                c.to_target_datagrams.fetch_add(1, Ordering::Relaxed);
                let _ = b.send(&buf[..n]);
            }
        });
        let (c, s) = (counters.clone(), stop.clone());
        let down = thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                let Ok(n) = back.recv(&mut buf) else {
                    continue;
                };
                let to = *client.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(to) = to {
                    c.to_client_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    c.to_client_datagrams.fetch_add(1, Ordering::Relaxed);
                    let _ = front.send_to(&buf[..n], to);
                }
            }
        });
        Ok(Relay {
            addr,
            counters,
            stop,
            threads: vec![up, down],
        })
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            to_target_bytes: c.to_target_bytes.load(Ordering::Relaxed),
            to_target_datagrams: c.to_target_datagrams.load(Ordering::Relaxed),
            to_client_bytes: c.to_client_bytes.load(Ordering::Relaxed),
            to_client_datagrams: c.to_client_datagrams.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relays_both_ways_and_counts_payload_bytes() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let relay = Relay::start(server.local_addr().unwrap()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(b"hello", relay.addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        server.send_to(b"hi back", from).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi back");
        let c = relay.counts();
        assert_eq!((c.to_target_bytes, c.to_target_datagrams), (5, 1));
        assert_eq!((c.to_client_bytes, c.to_client_datagrams), (7, 1));
        assert_eq!(c.bytes(), 12);
    }
}
