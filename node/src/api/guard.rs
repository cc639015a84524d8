//! [`Guarded`]: the connection guard, an `AsyncRead + AsyncWrite` wrapper around each
//! accepted API socket, between the socket and actix-http's HTTP/1 dispatcher.
//!
//! Contract:
//! - The request head is held back until it is complete and valid ([`framing`]); a head
//!   that is malformed (400), too large (431) or not complete within [`HEAD_TIMEOUT`]
//!   (408) is answered here with the JSON error shape and the connection is closed, so the
//!   dispatcher never answers one of them itself (it would with an empty body).
//! - A request body must arrive within [`BODY_TIMEOUT`] of the end of its head. Past it
//!   the guard answers `408` JSON if the server has not started a response yet, and closes
//!   the connection either way.
//! - Once the guard has answered, the server sees the end of the request stream and
//!   whatever it writes is dropped; the guard's answer gets [`DRAIN_TIMEOUT`] to reach a
//!   client that does not read, then the connection is closed.
//! - The end of the client's stream is passed on at once, also while a response streams
//!   (a watch), so that the server drops a closed client's response without waiting to
//!   write to it.
//! - One request per connection: bytes after the first request are dropped (at most
//!   [`DROP_LIMIT`] of them, then the connection is closed).
//!
//! [`framing`]: super::framing

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Instant, Sleep};

use super::framing::{Refusal, Scanner, Waiting};

/// Time from accepting a connection to the end of its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time from the end of a request head to the end of its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the guard's own answer gets to be written before the connection is closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes after the request that are read (and dropped) before the connection is closed.
pub const DROP_LIMIT: usize = 64 * 1024;

/// What the timer is timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    Request(Waiting),
    Drain,
}

/// A guarded connection.
pub struct Guarded<IO> {
    io: IO,
    scanner: Scanner,
    /// Accepted bytes the server has not read yet.
    inbox: Vec<u8>,
    /// The guard's own answer and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
    /// The server has written something (a response has started).
    server_wrote: bool,
    /// The client's stream ended, or the guard ends it for the server.
    ended: bool,
    timer: Pin<Box<Sleep>>,
    timing: Timing,
}

impl<IO> Guarded<IO> {
    /// Guards a connection accepted now.
    pub fn new(io: IO) -> Self {
        Guarded {
            io,
            scanner: Scanner::default(),
            inbox: Vec::new(),
            answer: None,
            server_wrote: false,
            ended: false,
            timer: Box::pin(sleep(HEAD_TIMEOUT)),
            timing: Timing::Request(Waiting::Head),
        }
    }

    /// Points the timer at `timing`, if it is not already timing that.
    fn time(&mut self, timing: Timing) {
        if self.timing != timing {
            let after = match timing {
                Timing::Request(Waiting::Head) => HEAD_TIMEOUT,
                Timing::Request(Waiting::Body) => BODY_TIMEOUT,
                Timing::Drain => DRAIN_TIMEOUT,
            };
            self.timer.as_mut().reset(Instant::now() + after);
            self.timing = timing;
        }
    }

    /// Answers the request with `refusal` and ends the request stream for the server.
    fn refuse(&mut self, refusal: &Refusal) {
        tracing::debug!(
            status = refusal.status.as_u16(),
            code = refusal.code,
            "API connection refused by the guard"
        );
        self.answer = Some((refusal.response(), 0));
        self.ended = true;
        self.time(Timing::Drain);
    }
}

impl<IO: AsyncWrite + Unpin> Guarded<IO> {
    /// Writes the guard's answer; an error once [`DRAIN_TIMEOUT`] has passed.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.answer {
            if *written == bytes.len() {
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    ready!(self.timer.as_mut().poll(cx));
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not read the answer",
                    )));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.inbox.is_empty() {
                let n = buf.remaining().min(this.inbox.len());
                buf.put_slice(&this.inbox[..n]);
                this.inbox.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            if let Some(waiting) = this.scanner.waiting() {
                this.time(Timing::Request(waiting));
                if this.timer.as_mut().poll(cx).is_ready() {
                    match waiting {
                        Waiting::Head => this.refuse(&Refusal::timeout(format!(
                            "the request head did not arrive within {} s",
                            HEAD_TIMEOUT.as_secs()
                        ))),
                        Waiting::Body if !this.server_wrote => {
                            this.refuse(&Refusal::timeout(format!(
                                "the request body did not arrive within {} s",
                                BODY_TIMEOUT.as_secs()
                            )))
                        }
                        // A response has started: it cannot be answered any more, only
                        // closed.
                        Waiting::Body => this.ended = true,
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.ended = true;
                continue;
            }
            if let Err(refusal) = this.scanner.feed(read.filled(), &mut this.inbox) {
                this.refuse(&refusal);
            } else if this.scanner.dropped() > DROP_LIMIT {
                this.ended = true;
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.answer.is_some() {
            // The guard has answered this request itself: the server's late answer (to a
            // request it saw end early) must not follow it on the wire.
            return Poll::Ready(Ok(data.len()));
        }
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, data))?;
        this.server_wrote |= written > 0;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_answer(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_answer(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_bad_head_is_answered_in_json_and_the_server_sees_nothing() {
        let (mut client, server) = duplex(64 * 1024);
        let mut guarded = Guarded::new(server);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\x01b\r\n\r\n")
            .await
            .expect("write");
        let mut seen = Vec::new();
        guarded.read_to_end(&mut seen).await.expect("read");
        assert!(seen.is_empty(), "the server saw {seen:?}");
        // The server's own answer is dropped; the guard's goes out.
        guarded
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .expect("write");
        guarded.shutdown().await.expect("shutdown");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8(answer).expect("utf8");
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains(r#""code":"bad_request""#), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }

    #[tokio::test]
    async fn a_good_request_passes_and_what_follows_is_dropped() {
        let (mut client, server) = duplex(64 * 1024);
        let mut guarded = Guarded::new(server);
        let request = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let mut sent = request.to_vec();
        sent.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        client.write_all(&sent).await.expect("write");
        client.shutdown().await.expect("end");
        let mut seen = Vec::new();
        guarded.read_to_end(&mut seen).await.expect("read");
        assert_eq!(seen, request, "exactly the first request");
        guarded
            .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .await
            .expect("write");
        guarded.shutdown().await.expect("shutdown");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        assert_eq!(answer, b"HTTP/1.1 200 OK\r\n\r\n");
    }
}
