//! `GET /v1/spaces/{space}/watch?type=T`: a streaming `application/x-ndjson` response, one
//! `ChangeEvent` per line, each line sent (and flushed) as soon as the event arrives. The
//! stream ends when the client goes away or the node stops.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use echo_actors::node::{ChangeEvent, NodeHandle};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;

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

pub async fn watch(
    node: web::Data<NodeHandle>,
    space: web::Path<String>,
    params: web::Query<WatchParams>,
) -> Result<HttpResponse, ApiError> {
    let events = node.watch(&space, params.into_inner().type_name).await?;
    let lines = ReceiverStream::new(events)
        .map(|event| ndjson_line(&event).map_err(actix_web::error::ErrorInternalServerError));
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
}
