//! The raw QUIC ceiling for `replicate`: two quinn endpoints made by echo's own endpoint
//! factory (`echo_actors::transport::endpoint`: device-key mutual TLS, the nodes'
//! transport settings) on loopback, each on its own thread and current-thread runtime as
//! the two daemons are separate processes; the client sends one large stream and the
//! server counts it. Timed at the client from the first byte written until the server's
//! answer (the count it received) arrives.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use echo_actors::transport::{self, NetEnv, TransportConfig};
use echo_actors::types::KeyPair;

/// What one bulk transfer measured.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Bulk {
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const CHUNK: usize = 64 * 1024;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn loopback() -> NetEnv {
    NetEnv::Real {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// Sends `bytes` (rounded up to 64 KiB) over one stream from a client to a server endpoint.
pub fn run(bytes: u64) -> Result<Bulk> {
    let chunks = bytes.div_ceil(CHUNK as u64).max(1);
    let total = chunks * CHUNK as u64;
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = thread::spawn(move || -> Result<u64> {
        runtime()?.block_on(async move {
            let key = KeyPair::from_secret([1; 32]);
            let ep = transport::endpoint(loopback(), &key, &TransportConfig::new([1; 32]))?;
            addr_tx.send(ep.local_addr()?)?;
            let incoming = ep.accept().await.context("server endpoint closed")?;
            let (conn, _) = transport::accept(incoming).await?;
            let (mut send, mut recv) = conn.accept_bi().await?;
            let mut got = 0u64;
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
                got += chunk.bytes.len() as u64;
            }
            send.write_all(&got.to_be_bytes()).await?;
            send.finish()?;
            // Keep the connection until the client has read the answer and closed it.
            conn.closed().await;
            ep.wait_idle().await;
            anyhow::Ok(got)
        })
    });
    let server_addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the bulk server endpoint did not start")?;
    let measured = runtime()?.block_on(async move {
        let key = KeyPair::from_secret([2; 32]);
        let ep = transport::endpoint(loopback(), &key, &TransportConfig::new([2; 32]))?;
        let (conn, _) = transport::connect(&ep, server_addr).await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        let buf = vec![0x5au8; CHUNK];
        let start = Instant::now();
        for _ in 0..chunks {
            send.write_all(&buf).await?;
        }
        send.finish()?;
        let mut answer = [0u8; 8];
        recv.read_exact(&mut answer).await?;
        let elapsed = start.elapsed();
        conn.close(0u32.into(), b"done");
        ep.wait_idle().await;
        anyhow::Ok(Bulk {
            bytes: u64::from_be_bytes(answer),
            elapsed,
        })
    })?;
    let got = server
        .join()
        .map_err(|_| anyhow!("the bulk server thread panicked"))??;
    ensure!(
        got == total && measured.bytes == total,
        "bulk transfer: sent {total} bytes, the server counted {got}"
    );
    Ok(measured)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_mebibyte_arrives_whole() {
        let bulk = run(1 << 20).unwrap();
        assert_eq!(bulk.bytes, 1 << 20);
        assert!(bulk.bytes_per_sec() > 0.0);
    }
}
