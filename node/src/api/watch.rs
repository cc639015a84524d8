//! `GET /v1/spaces/{space}/watch?type=T`: a streaming `application/x-ndjson` response, one
//! `ChangeEvent` per line, each line sent (and flushed) as soon as the event arrives.
//!
//! Contract:
//! - While no event comes, an empty line (`"\n"`) is sent every heartbeat interval (5 s by
//!   default). It tells the client the stream is alive and makes the server write, so that a
//!   client that vanished without closing its socket is found out. A client that closes its
//!   socket is noticed at once (the connection guard reports the socket's end and the server
//!   does not keep half-closed connections), whatever events there are.
//! - At most [`WatchConfig::max_streams`] streams are open at once; past that a watch is
//!   refused with `503 too_many_watches` before anything is subscribed.
//! - The stream owns the node-side subscription (the receiver of the space actor's channel)
//!   and its slot: when the response is dropped, both go, and the space actor drops its
//!   sender the next time it looks at its subscribers (every event, every new watch).
//! - The stream ends when the node drops the subscription (the daemon stops, or the client
//!   fell too far behind).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use echo_actors::node::{ChangeEvent, NodeHandle};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::error::ApiError;

/// Default most watch streams open at once (`run --max-watches`).
pub const DEFAULT_MAX_WATCHES: usize = 1024;
/// Default time between heartbeat lines when no event comes.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// A heartbeat line: empty, so NDJSON readers (and `jq`) skip it.
const HEARTBEAT_LINE: &[u8] = b"\n";

/// Watch settings and the count of open streams, shared by every worker.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub max_streams: usize,
    pub heartbeat: Duration,
    open: Arc<AtomicUsize>,
}

impl WatchConfig {
    pub fn new(max_streams: usize, heartbeat: Duration) -> Self {
        WatchConfig {
            max_streams,
            heartbeat,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a stream slot, or `None` when all are taken.
    fn acquire(&self) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.open.clone()))
    }

    /// Streams open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WATCHES, DEFAULT_HEARTBEAT)
    }
}

/// One open stream's place in the count; given back on drop.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Deserialize)]
pub struct WatchParams {
    #[serde(rename = "type")]
    type_name: Option<String>,
}

/// One event as one NDJSON line.
pub fn ndjson_line(event: &ChangeEvent) -> Result<web::Bytes, serde_json::Error> {
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    Ok(web::Bytes::from(line))
}

/// Everything a live stream holds; dropping it releases the subscription and the slot.
struct Live {
    events: mpsc::Receiver<ChangeEvent>,
    beat: Interval,
    heartbeat: Duration,
    _slot: Slot,
}

impl Live {
    /// The next line: an event, or a heartbeat after `heartbeat` without one; `None` once
    /// the node has dropped the subscription.
    async fn next_line(&mut self) -> Option<Result<web::Bytes, actix_web::Error>> {
        tokio::select! {
            event = self.events.recv() => {
                let event = event?;
                // An event shows the stream is alive: the next heartbeat is due a full
                // interval later.
                self.beat.reset_at(Instant::now() + self.heartbeat);
                Some(ndjson_line(&event).map_err(actix_web::error::ErrorInternalServerError))
            }
            _ = self.beat.tick() => Some(Ok(web::Bytes::from_static(HEARTBEAT_LINE))),
        }
    }
}

fn too_many(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_watches",
        format!(
            "{max} watch streams are open, the most this node serves at once; close one and retry"
        ),
    )
}

pub async fn watch(
    node: web::Data<NodeHandle>,
    config: web::Data<WatchConfig>,
    space: web::Path<String>,
    params: web::Query<WatchParams>,
) -> Result<HttpResponse, ApiError> {
    // The slot first: a refused watch must not subscribe anything.
    let slot = config
        .acquire()
        .ok_or_else(|| too_many(config.max_streams))?;
    let events = node.watch(&space, params.into_inner().type_name).await?;
    let mut beat = interval_at(Instant::now() + config.heartbeat, config.heartbeat);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let live = Live {
        events,
        beat,
        heartbeat: config.heartbeat,
        _slot: slot,
    };
    let lines = futures_util::stream::unfold(live, |mut live| async move {
        let line = live.next_line().await?;
        Some((line, live))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_actors::node::ChangeKind;
    use serde_json::json;

    #[test]
    fn one_compact_line_per_event() {
        let event = ChangeEvent {
            space_key: "ab".into(),
            id: "01".into(),
            kind: ChangeKind::Added,
            object: json!({"@id": "01", "title": "x\ny"}),
        };
        let line = ndjson_line(&event).expect("serializes");
        assert!(line.ends_with(b"\n"));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let back: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(back["kind"], "added");
    }

    #[test]
    fn slots_are_capped_and_given_back_on_drop() {
        let config = WatchConfig::new(2, DEFAULT_HEARTBEAT);
        let a = config.acquire().expect("first");
        let b = config.acquire().expect("second");
        assert!(
            config.acquire().is_none(),
            "a third stream past the cap of 2"
        );
        assert_eq!(config.open(), 2);
        drop(a);
        assert_eq!(config.open(), 1);
        let c = config.acquire().expect("a slot again after a drop");
        drop((b, c));
        assert_eq!(config.open(), 0);
        assert_eq!(too_many(2).status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn heartbeats_when_idle_and_ends_with_the_subscription() {
        let config = WatchConfig::new(1, Duration::from_millis(20));
        let (tx, events) = mpsc::channel(4);
        let mut live = Live {
            events,
            beat: interval_at(Instant::now() + config.heartbeat, config.heartbeat),
            heartbeat: config.heartbeat,
            _slot: config.acquire().expect("slot"),
        };
        let line = live.next_line().await.expect("a line").expect("ok");
        assert_eq!(&line[..], HEARTBEAT_LINE, "idle: a heartbeat");
        tx.send(ChangeEvent {
            space_key: "ab".into(),
            id: "01".into(),
            kind: ChangeKind::Updated,
            object: json!({}),
        })
        .await
        .expect("send");
        let line = live.next_line().await.expect("a line").expect("ok");
        assert!(line.starts_with(b"{"), "the event: {line:?}");
        drop(tx);
        assert!(
            live.next_line().await.is_none(),
            "ends with the subscription"
        );
        drop(live);
        assert_eq!(config.open(), 0, "the slot is given back");
    }
}
