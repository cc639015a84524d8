//! Signaling servers: `echo-node signal` (standalone, foreground) and the one `run
//! --serve-signal` embeds. Either way it is the library's `serve_signal` on a QUIC endpoint
//! of its own, authenticated by a fresh random device key (the server has no identity and
//! keeps nothing on disk).

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use actix::Addr;
use anyhow::Context;
use echo_actors::signal::{serve_signal, SignalServer, StopServer};
use echo_actors::transport::{self, NetEnv, TransportConfig};
use echo_actors::types::KeyPair;
use serde_json::json;

use crate::cli::SignalArgs;
use crate::daemon::{random_bytes, wait_for_stop_signal};

/// A running signaling server.
pub struct Signaling {
    pub server: Addr<SignalServer>,
    /// The address it is bound to.
    pub addr: SocketAddr,
    endpoint: quinn::Endpoint,
}

/// How long a stopping server waits for its close frames to reach the clients.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Starts a signaling server bound to `bind`. Call inside the actix system.
pub fn start(bind: SocketAddr) -> anyhow::Result<Signaling> {
    let device = KeyPair::from_secret(random_bytes()?);
    let config = TransportConfig::new(random_bytes()?);
    let endpoint = transport::endpoint(NetEnv::Real { bind }, &device, &config)
        .with_context(|| format!("cannot start a signaling server on {bind}"))?;
    let addr = endpoint
        .local_addr()
        .with_context(|| format!("signaling endpoint on {bind} has no address"))?;
    let server = serve_signal(endpoint.clone());
    tracing::info!(%addr, device = %device.public().short(), "signaling server listening");
    Ok(Signaling {
        server,
        addr,
        endpoint,
    })
}

impl Signaling {
    /// Stops the server: every client connection and the endpoint are closed.
    pub async fn stop(&self) {
        let _ = self.server.send(StopServer).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, self.endpoint.wait_idle()).await;
    }
}

/// `echo-node signal`: runs until SIGINT or SIGTERM, then exits 0.
pub fn run(args: &SignalArgs, json: bool) -> anyhow::Result<()> {
    actix::System::new().block_on(async move {
        let signaling = start(args.listen)?;
        let stop = wait_for_stop_signal()?;
        let line = if json {
            json!({ "status": "ready", "signal": signaling.addr.to_string(), "pid": std::process::id() })
                .to_string()
        } else {
            format!("echo-node signal ready: listening on {}", signaling.addr)
        };
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        stop.await;
        signaling.stop().await;
        tracing::info!("signaling server stopped");
        Ok(())
    })
}
