//! The local API: HTTP/JSON on a loopback address, bearer-token auth, JSON errors only.
//! [`bind`] builds and binds the actix-web server (one worker, short shutdown timeout; the
//! daemon stops it on SIGINT/SIGTERM); routes, auth, bodies, errors, the watch stream and the Yjs bridge
//! (`yjs*.rs`) are in the submodules. The reference is docs/api.md.

mod auth;
mod body;
mod error;
mod routes;
mod watch;
mod yjs;
mod yjs_room;
mod yjs_session;

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use echo_actors::node::NodeHandle;

pub use auth::ApiToken;
pub use body::BODY_LIMIT;

/// Seconds that open requests (e.g. watch streams) get to finish when the server stops.
const SHUTDOWN_TIMEOUT_SECS: u64 = 1;

/// Binds the API server on `addr` and starts it; returns the running server (a future that
/// resolves once it has stopped) and the address it listens on.
pub fn bind(
    node: NodeHandle,
    token: ApiToken,
    addr: SocketAddr,
) -> anyhow::Result<(Server, SocketAddr)> {
    let server = HttpServer::new(move || {
        App::new()
            // Per worker (yrs' Awareness is not Send); the server has one worker, so every
            // Yjs socket of the node shares it.
            .app_data(web::Data::new(yjs_room::Rooms::default()))
            .app_data(web::Data::new(node.clone()))
            .app_data(web::Data::new(token.clone()))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
            .wrap(from_fn(auth::require_token))
            .wrap(ErrorHandlers::new().default_handler(error::json_error_fallback))
    })
    .workers(1)
    // The daemon installs its own SIGINT/SIGTERM handling before it announces `ready`.
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .bind(addr)
    .with_context(|| format!("cannot listen on {addr} for the local API"))?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .context("the local API server has no address")?;
    Ok((server.run(), bound))
}
