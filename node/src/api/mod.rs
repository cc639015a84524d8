//! The local API: HTTP/JSON on a loopback address, bearer-token auth, JSON errors only.
//! [`bind`] builds and binds the server (one worker, short shutdown timeout; the daemon
//! stops it on SIGINT/SIGTERM); routes, invitations, auth, bodies, errors, the watch stream
//! and the Yjs bridge (`yjs*.rs`) are in the submodules. The reference is docs/api.md.
//!
//! The server is actix-http's HTTP/1 service over sockets wrapped in the connection guard
//! (`guard.rs`, with `framing.rs`): the guard answers, in JSON, the requests actix-http
//! would otherwise answer itself with an empty body (bad, oversized or slow heads) and
//! times request bodies. For that it must know that no other response is on the wire, so
//! every connection carries one request (keep-alive is off: on loopback a new connection
//! per request costs little). A client that closes its socket is treated as gone even
//! while its response streams (no half-closed connections), so watch streams end at once.

mod auth;
mod body;
mod devices;
mod error;
mod framing;
mod guard;
mod invitations;
mod routes;
mod watch;
mod yjs;
mod yjs_room;
mod yjs_session;

use std::net::SocketAddr;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive, Protocol};
use actix_server::Server;
use actix_service::{fn_service, map_config, ServiceFactoryExt};
use actix_web::dev::AppConfig;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App};
use anyhow::Context;
use echo_actors::node::NodeHandle;
use tokio::net::TcpStream;

pub use auth::ApiToken;
pub use body::BODY_LIMIT;
pub use invitations::{MAX_LIFETIME_MS, MAX_TIMEOUT_MS};
pub use watch::{DEFAULT_HEARTBEAT, DEFAULT_MAX_WATCHES};

/// Seconds that open requests (e.g. watch streams) get to finish when the server stops.
const SHUTDOWN_TIMEOUT_SECS: u64 = 1;
/// actix-http's own head timer, a backstop behind the guard's [`HEAD_TIMEOUT`] (the guard
/// hands a head on only once it is complete, so this never fires in practice).
const DISPATCHER_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection may take to flush.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of the local API beyond its address.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Most watch streams open at once.
    pub max_watches: usize,
    /// Time between heartbeat lines on an idle watch stream.
    pub watch_heartbeat: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_watches: DEFAULT_MAX_WATCHES,
            watch_heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// Binds the API server on `addr` and starts it; returns the running server (a future that
/// resolves once it has stopped) and the address it listens on.
pub fn bind(
    node: NodeHandle,
    token: ApiToken,
    addr: SocketAddr,
    config: ApiConfig,
) -> anyhow::Result<(Server, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for the local API"))?;
    let bound = listener
        .local_addr()
        .context("the local API server has no address")?;
    // Shared by every worker, so the cap counts the node's streams.
    let watches = watch::WatchConfig::new(config.max_watches, config.watch_heartbeat);
    let server = Server::build()
        .workers(1)
        // The daemon installs its own SIGINT/SIGTERM handling before it announces `ready`.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen("echo-api", listener, move || {
            let app = App::new()
                // Per worker (yrs' Awareness is not Send); the server has one worker, so
                // every Yjs socket of the node shares it.
                .app_data(web::Data::new(yjs_room::Rooms::default()))
                .app_data(web::Data::new(node.clone()))
                .app_data(web::Data::new(token.clone()))
                .app_data(web::Data::new(watches.clone()))
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                .wrap(from_fn(auth::require_token))
                .wrap(ErrorHandlers::new().default_handler(error::json_error_fallback));
            let http = HttpService::build()
                .keep_alive(KeepAlive::Disabled)
                .client_request_timeout(DISPATCHER_HEAD_TIMEOUT)
                .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                .h1_allow_half_closed(false)
                .local_addr(bound)
                .finish(map_config(app, |_| AppConfig::default()));
            fn_service(|io: TcpStream| async move {
                // Watch lines are small writes that must not wait for the previous ACK.
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok((guard::Guarded::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })
        .with_context(|| format!("cannot serve the local API on {bound}"))?
        .run();
    Ok((server, bound))
}
