//! `echo-node run`: the foreground daemon. Opens the store and the node, serves the local
//! API, writes `api-token` then `api.json`, prints a `ready` line, and on SIGINT/SIGTERM
//! stops serving, flushes the node, removes `api.json` and returns.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use echo_actors::node::{Node, NodeConfig};
use echo_actors::store::{SledStore, Store};
use serde_json::json;

use crate::api::{self, ApiToken};
use crate::cli::RunArgs;
use crate::clock::SystemClock;
use crate::exit::ExitError;
use crate::paths::{ApiInfo, DataDir};

/// Runs the daemon until a signal stops it.
pub fn run(dir: &DataDir, args: &RunArgs, json: bool) -> anyhow::Result<()> {
    let api_addr = loopback_addr(&args.api).map_err(ExitError::usage)?;
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| ExitError::usage(format!("--listen `{}` is not IP:PORT: {e}", args.listen)))?;
    // Everything the daemon creates (sled files, token, api.json) is private to the owner:
    // the store holds secret keys.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    dir.create()?;
    let store = SledStore::open(&dir.store()).map_err(|e| store_error(dir, &e.to_string()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let rng_seed: [u8; 32] = random_bytes()?;
    let token = hex::encode(random_bytes::<32>()?);
    let config = NodeConfig {
        store,
        rng_seed,
        clock: Arc::new(SystemClock),
        listen: Some(listen.to_string()),
        network: None,
    };
    actix::System::new().block_on(serve(dir, config, ApiToken(token), api_addr, json))
}

async fn serve(
    dir: &DataDir,
    config: NodeConfig,
    token: ApiToken,
    api_addr: SocketAddr,
    json: bool,
) -> anyhow::Result<()> {
    let node = Node::open(config).await.context("cannot open the node")?;
    dir.write_token(&token.0)?;
    let (server, bound) = api::bind(node.clone(), token, api_addr)?;
    // Signal handlers are in place before anyone is told we are ready, so a SIGTERM at any
    // moment after `ready` still flushes and exits 0.
    stop_on_signal(server.handle())?;
    let info = ApiInfo {
        url: format!("http://{bound}"),
        pid: std::process::id(),
    };
    if let Err(e) = dir
        .write_api_info(&info)
        .and_then(|()| announce_ready(dir, &info, json))
    {
        server.handle().stop(false).await;
        let _ = dir.remove_api_info();
        return Err(e);
    }
    tracing::info!(url = %info.url, "serving the local API");

    let served = server.await;
    tracing::info!("local API stopped; flushing the node");
    let flushed = node.shutdown().await;
    let removed = dir.remove_api_info();
    served.context("the local API server failed")?;
    flushed.context("cannot flush the store on shutdown")?;
    removed.with_context(|| format!("cannot remove {}", dir.api_json().display()))?;
    tracing::info!("stopped");
    Ok(())
}

/// Stops the API server (gracefully) on the first SIGINT or SIGTERM.
fn stop_on_signal(handle: actix_web::dev::ServerHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    actix::spawn(async move {
        tokio::select! {
            biased;
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        handle.stop(true).await;
    });
    Ok(())
}

/// A clear error for a store that cannot be opened, above all one that another daemon holds.
fn store_error(dir: &DataDir, reason: &str) -> anyhow::Error {
    let root = dir.root().display();
    if is_lock_conflict(reason) {
        anyhow!(
            "another echo-node daemon is already running for data dir {root} (its store is locked); \
             stop it first or use another --data-dir"
        )
    } else {
        anyhow!("cannot start a daemon for data dir {root}: {reason}")
    }
}

/// Whether a store-open failure means the store's lock is held by another process.
fn is_lock_conflict(reason: &str) -> bool {
    [
        "could not acquire lock",
        "WouldBlock",
        "in use by another process",
    ]
    .iter()
    .any(|needle| reason.contains(needle))
}

/// Prints the line that tells supervisors and tests the daemon is serving.
fn announce_ready(dir: &DataDir, info: &ApiInfo, json: bool) -> anyhow::Result<()> {
    let line = if json {
        json!({ "status": "ready", "url": info.url, "pid": info.pid, "data_dir": dir.root() })
            .to_string()
    } else {
        format!(
            "echo-node ready: local API at {} (data dir {})",
            info.url,
            dir.root().display()
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Parses `--api`: `IP:PORT` on a loopback address, or `localhost:PORT`.
pub fn loopback_addr(arg: &str) -> Result<SocketAddr, String> {
    let addr = match arg.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .map_err(|e| format!("--api `{arg}`: bad port: {e}"))?,
        None => arg
            .parse::<SocketAddr>()
            .map_err(|e| format!("--api `{arg}` is not IP:PORT (e.g. 127.0.0.1:0): {e}"))?,
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--api `{arg}` is not a loopback address; the local API only listens on 127.0.0.1 or ::1"
        ));
    }
    Ok(addr)
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("cannot read OS randomness: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_conflicts_are_recognised() {
        assert!(is_lock_conflict(
            r#"IO error: could not acquire lock on "db": Os { code: 11, kind: WouldBlock }"#
        ));
        assert!(!is_lock_conflict("permission denied"));
    }

    #[test]
    fn api_address_must_be_loopback() {
        assert_eq!(
            loopback_addr("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().expect("addr"))
        );
        assert_eq!(
            loopback_addr("[::1]:8080"),
            Ok("[::1]:8080".parse().expect("addr"))
        );
        assert_eq!(
            loopback_addr("localhost:9"),
            Ok("127.0.0.1:9".parse().expect("addr"))
        );
        assert!(loopback_addr("0.0.0.0:0").is_err());
        assert!(loopback_addr("192.168.1.5:80").is_err());
        assert!(loopback_addr("example.com:80").is_err());
        assert!(loopback_addr("127.0.0.1").is_err());
    }
}
