//! HTTP load for `ingest --via http`: N client threads, each sending its share of requests
//! one after another, a new TCP connection per request (the local API serves one request
//! per connection, docs/api.md), and the ceiling that load can reach on this machine: an
//! actix-web server with one worker, keep-alive off and an empty handler, driven by the
//! same clients with the same requests.

use std::net::TcpListener;
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use actix_web::http::KeepAlive;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use serde_json::Value;

use crate::Latency;

/// What one load run measured: all requests answered with the expected status.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub ops: usize,
    pub elapsed: Duration,
    pub latency: Latency,
}

impl Load {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A client that never reuses a connection (one request per connection, as the API
/// requires and as the ceiling is measured).
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
}

/// Writer `w`'s share of `ops` requests spread over `writers`.
pub fn share(ops: usize, writers: usize, w: usize) -> usize {
    ops / writers + usize::from(w < ops % writers)
}

/// One request: method, path (after the base URL) and JSON body.
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

/// `writers` threads send `ops` requests in all to `base_url` with the bearer `token`,
/// `request(w, k)` being writer `w`'s `k`-th; each must be answered `expect`. Timed from
/// the moment all threads are ready until the last answer.
pub fn run<F>(
    base_url: &str,
    token: &str,
    writers: usize,
    ops: usize,
    expect: u16,
    request: F,
    bar: &ProgressBar,
) -> Result<Load>
where
    F: Fn(usize, usize) -> Request + Sync,
{
    let writers = writers.max(1);
    let ready = Barrier::new(writers + 1);
    let auth = format!("Bearer {token}");
    let (start, results) = thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (ready, auth, request) = (&ready, &auth, &request);
                s.spawn(move || -> Result<Vec<Duration>> {
                    let agent = agent();
                    let n = share(ops, writers, w);
                    let mut lat = Vec::with_capacity(n);
                    ready.wait();
                    for k in 0..n {
                        let r = request(w, k);
                        let t = Instant::now();
                        let res = agent
                            .request(r.method, &format!("{base_url}{}", r.path))
                            .set("Authorization", auth)
                            .send_json(&r.body);
                        match res {
                            Ok(resp) if resp.status() == expect => {
                                // Read the body: the request is done when its answer is.
                                let _ = resp.into_string();
                            }
                            Ok(resp) => bail!(
                                "{} {}: {} (expected {expect})",
                                r.method,
                                r.path,
                                resp.status()
                            ),
                            Err(ureq::Error::Status(s, resp)) => bail!(
                                "{} {}: {s} {}",
                                r.method,
                                r.path,
                                resp.into_string().unwrap_or_default()
                            ),
                            Err(e) => bail!("{} {base_url}{}: {e}", r.method, r.path),
                        }
                        lat.push(t.elapsed());
                        bar.inc(1);
                    }
                    Ok(lat)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a client thread panicked"))?)
            .collect();
        (start, results)
    });
    let elapsed = start.elapsed();
    let mut samples = Vec::with_capacity(ops);
    for r in results {
        samples.extend(r?);
    }
    Ok(Load {
        ops: samples.len(),
        elapsed,
        latency: Latency::of(samples),
    })
}

/// The HTTP ceiling: an empty actix-web handler (reads the body, answers `{}`) with one
/// worker and keep-alive off, like the node's API; stopped on drop.
pub struct Ceiling {
    pub url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<thread::JoinHandle<()>>,
}

async fn empty(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
}

impl Ceiling {
    pub fn start() -> Result<Ceiling> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the ceiling server")?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let served = actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(|| App::new().default_service(web::to(empty)))
                    .workers(1)
                    .keep_alive(KeepAlive::Disabled)
                    .disable_signals()
                    .listen(listener)?
                    .run();
                let _ = tx.send(server.handle());
                server.await
            });
            if let Err(e) = served {
                eprintln!("ceiling server: {e}");
            }
        });
        let handle = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the ceiling server did not start")?;
        Ok(Ceiling {
            url,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        // Sends the stop command at once; the thread ends when the server has stopped.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
