//! `echo-node run`: the foreground daemon. Opens the store and the node with networking
//! (QUIC on `--listen`, static peers, signaling servers, optionally an embedded signaling
//! server), serves the local API, writes `api-token` then `api.json`, prints a `ready` line
//! with the API URL and the bound peer address, and on SIGINT/SIGTERM stops serving, closes
//! peer connections, flushes the node, removes `api.json` and returns.

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use echo_actors::identity::{open_sled_migrated, IdentityLoadError};
use echo_actors::mesh::MeshConfig;
use echo_actors::node::{NetworkConfig, Node, NodeConfig};
use echo_actors::presence::PresenceConfig;
use echo_actors::store::{Store, StoreError};
use echo_actors::transport::NetEnv;
use serde_json::json;

use crate::api::{self, ApiToken};
use crate::cli::RunArgs;
use crate::clock::SystemClock;
use crate::exit::ExitError;
use crate::paths::{ApiInfo, DataDir};
use crate::signal::{self, Signaling};

/// Runs the daemon until a signal stops it.
pub fn run(dir: &DataDir, args: &RunArgs, json: bool) -> anyhow::Result<()> {
    let api_addr = loopback_addr(&args.api).map_err(ExitError::usage)?;
    // Everything the daemon creates (sled files, token, api.json) is private to the owner:
    // the store holds secret keys.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    dir.create()?;
    // A data dir from before the identity secret left the store is rewritten without the
    // secret as it opens (identity/migrate.rs).
    let (store, _) = open_sled_migrated(&dir.store()).map_err(|e| match e {
        IdentityLoadError::Storage(e) => store_error(dir, &e),
        other => anyhow!(
            "cannot open the identity record of data dir {}: {other}",
            dir.root().display()
        ),
    })?;
    let store: Arc<dyn Store> = Arc::new(store);
    let rng_seed: [u8; 32] = random_bytes()?;
    let token = ApiToken(hex::encode(random_bytes::<32>()?));
    actix::System::new().block_on(async move {
        // The embedded signaling server comes first: the node registers with it too.
        let signaling = args.serve_signal.map(signal::start).transpose()?;
        let mut mesh = mesh_config(args);
        if let Some(own) = signaling
            .as_ref()
            .map(|s| dialable(s.addr, args.listen.ip()))
        {
            if !mesh.signal_servers.contains(&own) {
                mesh.signal_servers.push(own);
            }
        }
        let config = NodeConfig {
            store,
            rng_seed,
            clock: Arc::new(SystemClock),
            listen: Some(args.listen.to_string()),
            coalesce: std::time::Duration::from_millis(args.coalesce_ms),
            network: Some(NetworkConfig {
                net: NetEnv::Real { bind: args.listen },
                mesh,
            }),
        };
        let api_config = api::ApiConfig {
            max_watches: usize::from(args.max_watches),
            watch_heartbeat: std::time::Duration::from_millis(args.watch_heartbeat_ms),
        };
        let served = serve(
            dir,
            config,
            token,
            api_addr,
            api_config,
            signaling.as_ref(),
            json,
        )
        .await;
        if let Some(signaling) = &signaling {
            signaling.stop().await;
        }
        served
    })
}

/// The mesh settings from the command line.
fn mesh_config(args: &RunArgs) -> MeshConfig {
    MeshConfig {
        static_peers: args.peer.clone(),
        signal_servers: args.signal.clone(),
        max_originated: args.max_originated.into(),
        max_accepted: args.max_accepted.into(),
        listen_for_members: !args.no_identity_topics,
        advertise_ips: advertise_ips(args),
        presence: PresenceConfig {
            interval: std::time::Duration::from_millis(args.presence_interval_ms),
            timeout: std::time::Duration::from_millis(args.presence_timeout_ms),
        },
    }
}

/// What invitation codes name as this node's IPs: `--advertise`, or with a wildcard
/// `--listen` the IP of the interface that routes outwards (found by "connecting" a UDP
/// socket, which sends nothing), if the machine has one.
fn advertise_ips(args: &RunArgs) -> Vec<IpAddr> {
    if !args.advertise.is_empty() {
        return args.advertise.clone();
    }
    if !args.listen.ip().is_unspecified() {
        return vec![];
    }
    let probe: SocketAddr = if args.listen.is_ipv4() {
        // TEST-NET-1 (RFC 5737): routable in form, never answered; nothing is sent.
        SocketAddr::from(([192, 0, 2, 1], 9))
    } else {
        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9))
    };
    let bind: SocketAddr = SocketAddr::new(args.listen.ip(), 0);
    std::net::UdpSocket::bind(bind)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .into_iter()
        .collect()
}

/// The address this node registers with its own signaling server bound at `bound`. The
/// server tells other nodes the address it sees us connect from, so a wildcard bind is
/// reached through our concrete `--listen` IP when there is one, else through loopback.
fn dialable(bound: SocketAddr, listen_ip: IpAddr) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let ip = match (bound.ip(), listen_ip) {
        (IpAddr::V4(_), IpAddr::V4(ip)) if !ip.is_unspecified() => IpAddr::V4(ip),
        (IpAddr::V6(_), IpAddr::V6(ip)) if !ip.is_unspecified() => IpAddr::V6(ip),
        (IpAddr::V4(_), _) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), _) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, bound.port())
}

async fn serve(
    dir: &DataDir,
    config: NodeConfig,
    token: ApiToken,
    api_addr: SocketAddr,
    api_config: api::ApiConfig,
    signaling: Option<&Signaling>,
    json: bool,
) -> anyhow::Result<()> {
    let node = Node::open(config).await.context("cannot open the node")?;
    let listen = node
        .status()
        .await
        .context("cannot read the node's status")?
        .listen
        .unwrap_or_default();
    dir.write_token(&token.0)?;
    let (server, bound) = api::bind(node.clone(), token, api_addr, api_config)?;
    // Signal handlers are in place before anyone is told we are ready, so a SIGTERM at any
    // moment after `ready` still flushes and exits 0.
    let stop = wait_for_stop_signal()?;
    let handle = server.handle();
    actix::spawn(async move {
        stop.await;
        handle.stop(true).await;
    });
    let info = ApiInfo {
        url: format!("http://{bound}"),
        pid: std::process::id(),
    };
    let ready = Ready {
        info: &info,
        listen: &listen,
        signal: signaling.map(|s| s.addr),
    };
    if let Err(e) = dir
        .write_api_info(&info)
        .and_then(|()| announce_ready(dir, &ready, json))
    {
        server.handle().stop(false).await;
        let _ = node.shutdown().await;
        let _ = dir.remove_api_info();
        return Err(e);
    }
    tracing::info!(url = %info.url, %listen, "serving the local API and listening for peers");

    let served = server.await;
    tracing::info!("local API stopped; closing peer connections and flushing the node");
    let flushed = node.shutdown().await;
    let removed = dir.remove_api_info();
    served.context("the local API server failed")?;
    flushed.context("cannot flush the store on shutdown")?;
    removed.with_context(|| format!("cannot remove {}", dir.api_json().display()))?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs SIGINT and SIGTERM handlers now; the returned future resolves on the first of
/// them. Call inside the actix system.
pub fn wait_for_stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            biased;
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
}

/// A clear error for a store that cannot be opened, above all one that another daemon holds.
fn store_error(dir: &DataDir, error: &StoreError) -> anyhow::Error {
    let root = dir.root().display();
    match error {
        StoreError::Locked { .. } => anyhow!(
            "another echo-node daemon is already running for data dir {root} (its store is locked); \
             stop it first or use another --data-dir"
        ),
        other => anyhow!("cannot start a daemon for data dir {root}: {other}"),
    }
}

/// What the ready line reports.
struct Ready<'a> {
    info: &'a ApiInfo,
    /// The bound peer (QUIC) address.
    listen: &'a str,
    /// The embedded signaling server's address, if any.
    signal: Option<SocketAddr>,
}

/// Prints the line that tells supervisors and tests the daemon is serving.
fn announce_ready(dir: &DataDir, ready: &Ready<'_>, json: bool) -> anyhow::Result<()> {
    let info = ready.info;
    let line = if json {
        let mut line = json!({
            "status": "ready",
            "url": info.url,
            "pid": info.pid,
            "data_dir": dir.root(),
            "listen": ready.listen,
        });
        if let Some(signal) = ready.signal {
            line["signal"] = json!(signal.to_string());
        }
        line.to_string()
    } else {
        let signal = ready
            .signal
            .map(|s| format!(", signaling server on {s}"))
            .unwrap_or_default();
        format!(
            "echo-node ready: local API at {}, peers on {}{signal} (data dir {})",
            info.url,
            ready.listen,
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

pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("cannot read OS randomness: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_signaling_server_is_dialled_at_a_concrete_address() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            dialable(addr("0.0.0.0:7400"), ip("0.0.0.0")),
            addr("127.0.0.1:7400")
        );
        assert_eq!(
            dialable(addr("0.0.0.0:7400"), ip("192.168.1.5")),
            addr("192.168.1.5:7400")
        );
        assert_eq!(
            dialable(addr("[::]:7400"), ip("0.0.0.0")),
            addr("[::1]:7400")
        );
        assert_eq!(
            dialable(addr("10.1.2.3:7400"), ip("192.168.1.5")),
            addr("10.1.2.3:7400")
        );
    }

    #[test]
    fn members_identity_topics_are_listened_under_unless_turned_off() {
        use clap::Parser;
        let run_args = |extra: &[&str]| {
            let argv = ["echo-node", "run"].iter().chain(extra).copied();
            match crate::cli::Cli::try_parse_from(argv)
                .expect("parses")
                .command
            {
                crate::cli::Command::Run(args) => args,
                _ => unreachable!("`run` parses as run"),
            }
        };
        assert!(mesh_config(&run_args(&[])).listen_for_members);
        assert!(!mesh_config(&run_args(&["--no-identity-topics"])).listen_for_members);
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
