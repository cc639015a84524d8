//! `GET /v1/yjs/{space}`: the y-websocket protocol over a WebSocket (actix-ws), so that an
//! unmodified `WebsocketProvider('ws://<api>/v1/yjs', SPACE, doc, { params: { token } })`
//! syncs with the space's document. The token is checked by the auth middleware (header or
//! `token` query parameter) before the upgrade; an unknown space is a JSON 404.
//!
//! The socket loop is thin: frames go through [`YjsSession`] (sans-IO), updates through the
//! space actor's `YjsApply` (trial copy + object model + role; answered once applied, in
//! order, while the signed block becomes durable: the client's next edits are read meanwhile
//! and may share the block, and a failed commit still closes the socket), step 2 from
//! `YjsDiff`, changes of the space arrive on the actor's raw-update
//! subscription, awareness through [`Rooms`]. A refused update, a bad frame, a flood, an
//! oversized frame or a client that fell behind closes the socket with a code and reason;
//! nothing here panics and the node keeps serving.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError, Session};
use echo_actors::node::{NodeError, NodeHandle};
use echo_actors::space::{
    BridgeEvent, SpaceActor, SpaceRequestError, YjsApply, YjsDiff, YjsSubscribe, YjsSubscription,
};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;

use super::error::ApiError;
use super::yjs_room::Rooms;
use super::yjs_session::{close, closing, refusal, Action, YjsSession, MAX_MESSAGE};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub async fn yjs(
    req: HttpRequest,
    body: web::Payload,
    node: web::Data<NodeHandle>,
    rooms: web::Data<Rooms>,
    space: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = node.space_actor(&space).await?;
    let subscription = actor
        .send(YjsSubscribe)
        .await
        .map_err(|_| NodeError::Unavailable)?;
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::bad_request(format!(
            "{e}: /v1/yjs/{{space}} is a WebSocket endpoint (y-websocket protocol)"
        ))
    })?;
    let stream = stream
        .max_frame_size(MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE);
    actix_web::rt::spawn(run(actor, subscription, session, stream, rooms));
    Ok(response)
}

/// How a connection ended, for the log (never includes the token or the update).
enum End {
    Client,
    Closed(u16, String),
}

async fn run(
    actor: actix::Addr<SpaceActor>,
    mut sub: YjsSubscription,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    rooms: web::Data<Rooms>,
) {
    let space = sub.space_key.clone();
    let (conn, mut relayed, initial) = rooms.join(&space);
    let mut core = YjsSession::new(now_ms());
    let mut greeting = vec![YjsSession::greeting(&sub.state_vector)];
    greeting.extend(initial);
    let mut end = End::Client;
    let mut ok = true;
    let mut pending = Pending::new();
    for message in greeting {
        ok &= session.binary(message).await.is_ok();
    }
    tracing::debug!(space = %&space[..8.min(space.len())], conn, writable = sub.writable, "yjs client connected");
    while ok {
        let actions = tokio::select! {
            frame = stream.next() => match frame {
                None | Some(Ok(AggregatedMessage::Close(_))) => break,
                Some(Ok(AggregatedMessage::Binary(bytes))) => core.on_binary(&bytes, now_ms()),
                Some(Ok(AggregatedMessage::Text(_))) => vec![closing(
                    close::UNSUPPORTED,
                    "text frames are not y-protocols messages; send binary frames",
                )],
                Some(Ok(AggregatedMessage::Ping(p))) => {
                    ok = session.pong(&p).await.is_ok();
                    continue;
                }
                Some(Ok(AggregatedMessage::Pong(_))) => continue,
                Some(Err(ProtocolError::Overflow)) => vec![closing(
                    close::TOO_BIG,
                    &format!("message larger than {MAX_MESSAGE} bytes"),
                )],
                Some(Err(e)) => vec![closing(close::MALFORMED, &format!("protocol error: {e}"))],
            },
            update = sub.updates.recv() => match update {
                Some(BridgeEvent::Update(update)) => vec![Action::Send(YjsSession::update(&update))],
                Some(BridgeEvent::Retracted) => vec![closing(
                    close::RETRACTED,
                    "a device revocation took changes out of this space: load it into a new document",
                )],
                None => vec![closing(
                    close::TRY_AGAIN,
                    "the client fell behind the space's updates; reconnect to resync",
                )],
            },
            message = relayed.recv() => match message {
                Some(message) => vec![Action::Send(message)],
                None => continue,
            },
            durable = pending.next(), if !pending.is_empty() => match durable {
                Some(Err(e)) => {
                    end = refused(e, &mut session).await;
                    break;
                }
                Some(Ok(())) | None => continue,
            },
        };
        for action in actions {
            if let Err(closed) = perform(
                action,
                &actor,
                &mut pending,
                &mut session,
                &rooms,
                &space,
                conn,
            )
            .await
            {
                end = closed;
                ok = false;
                break;
            }
        }
    }
    rooms.leave(&space, conn);
    match end {
        End::Client => {
            let _ = session.close(None).await;
            tracing::debug!(conn, "yjs client went");
        }
        End::Closed(code, reason) => {
            tracing::info!(conn, code, %reason, "yjs socket closed by the node");
            let _ = session
                .close(Some(CloseReason {
                    code: code.into(),
                    description: Some(reason),
                }))
                .await;
        }
    }
}

/// Most of a client's applied updates whose blocks are not durable yet; past it the
/// socket waits for the oldest before reading on.
const MAX_NOT_DURABLE: usize = 1024;

/// A client's applied updates, each until its block is durable (in the order applied).
type Pending = FuturesOrdered<LocalBoxFuture<'static, Result<(), SpaceRequestError>>>;

/// Does one action; `Err` ends the connection (with a close code, or because it is gone).
async fn perform(
    action: Action,
    actor: &actix::Addr<SpaceActor>,
    pending: &mut Pending,
    session: &mut Session,
    rooms: &Rooms,
    space: &str,
    conn: u64,
) -> Result<(), End> {
    let gone = |_| End::Client;
    match action {
        Action::Send(bytes) => session.binary(bytes).await.map_err(gone),
        Action::Close(code, reason) => Err(End::Closed(code, reason)),
        Action::Diff(sv) => match actor.send(YjsDiff(sv)).await {
            Ok(Ok(diff)) => session.binary(YjsSession::step2(&diff)).await.map_err(gone),
            Ok(Err(e)) => Err(close_for(refusal(&e.into()))),
            Err(_) => Err(End::Closed(close::INTERNAL, "the node is stopping".into())),
        },
        Action::Apply(update) => match actor.send(YjsApply(update)).await {
            // Applied; its block becomes durable meanwhile (the next edits may share it).
            Ok(Ok(durable)) => {
                if pending.len() >= MAX_NOT_DURABLE {
                    if let Some(Err(e)) = pending.next().await {
                        return Err(refused(e, session).await);
                    }
                }
                pending.push_back(Box::pin(durable.wait()));
                Ok(())
            }
            Ok(Err(e)) => Err(refused(e, session).await),
            Err(_) => Err(End::Closed(close::INTERNAL, "the node is stopping".into())),
        },
        Action::Awareness(update) => {
            rooms.update(space, conn, update);
            Ok(())
        }
        Action::QueryAwareness => match rooms.query(space) {
            Some(states) => session.binary(states).await.map_err(gone),
            None => Ok(()),
        },
    }
}

/// Tells the client why its update was refused, and how the socket closes.
async fn refused(e: SpaceRequestError, session: &mut Session) -> End {
    let mut actions = refusal(&e.into()).into_iter();
    if let Some(Action::Send(notice)) = actions.next() {
        let _ = session.binary(notice).await;
    }
    close_for(actions.collect())
}

/// The close among `actions` (a refusal always has one).
fn close_for(actions: Vec<Action>) -> End {
    actions
        .into_iter()
        .find_map(|a| match a {
            Action::Close(code, reason) => Some(End::Closed(code, reason)),
            _ => None,
        })
        .unwrap_or(End::Closed(close::INTERNAL, "refused".into()))
}
