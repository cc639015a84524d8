//! Request framing for the connection guard (`guard.rs`), sans IO.
//!
//! actix-http answers some requests itself, before any of our code runs, with an empty
//! body: a head over its buffer or with too many headers (431), a head that is malformed
//! (400, e.g. a `Content-Type` with control bytes) and a head that is too slow (408). The
//! guard therefore reads the request head first and validates it here by the same rules
//! (the same `httparse`, the same header checks as actix-http 3's decoder) but with
//! tighter limits, so that every such request is refused here, with the JSON error shape,
//! and actix-http only ever sees heads it accepts.
//!
//! [`Scanner`] follows one request through its head and body (`Content-Length` or chunked)
//! so that the guard knows which deadline applies. The API serves one request per
//! connection (keep-alive is off), so whatever follows the first request is dropped.

use actix_web::http::{Method, StatusCode, Uri};
use serde_json::json;

/// Largest request head (request line and headers) accepted, in bytes.
pub const HEAD_LIMIT: usize = 32 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line of a chunked body that is followed; a longer one is left to
/// actix-http (which refuses it to the handler, whose answer is JSON).
const CHUNK_LINE_LIMIT: usize = 4096;

/// A request the guard answers itself: status, stable code, message (docs/api.md, Errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn bad(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    fn too_large(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            code: "headers_too_large",
            message: message.into(),
        }
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "timeout",
            message: message.into(),
        }
    }

    /// The whole HTTP/1.1 response: the JSON error body, and `Connection: close` (the
    /// guard closes the connection after it).
    pub fn response(&self) -> Vec<u8> {
        let body = json!({ "error": self.message, "code": self.code }).to_string();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Error"),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// How the body of an accepted request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// Raw bytes to the end of the connection (a WebSocket upgrade, CONNECT).
    Stream,
}

/// Checks a request head at the start of `buf`: `Ok(None)` while it is incomplete,
/// `Ok(Some((head_len, body)))` once it is complete and acceptable.
pub fn check_head(buf: &[u8]) -> Result<Option<(usize, Body)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= HEAD_LIMIT => len,
        Ok(httparse::Status::Partial) if buf.len() <= HEAD_LIMIT => return Ok(None),
        Ok(_) => {
            return Err(Refusal::too_large(format!(
                "the request head (URL and headers) is larger than {HEAD_LIMIT} bytes"
            )))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::too_large(format!(
                "the request has more than {MAX_HEADERS} header fields"
            )))
        }
        Err(e) => return Err(Refusal::bad(format!("malformed request head: {e}"))),
    };
    let method = req.method.unwrap_or_default();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| Refusal::bad("malformed request head: invalid method"))?;
    Uri::try_from(req.path.unwrap_or_default())
        .map_err(|e| Refusal::bad(format!("malformed request target: {e}")))?;
    let http11 = req.version == Some(1);
    let body = body_of(req.headers, http11, &method)?;
    Ok(Some((len, body)))
}

/// The framing rules of actix-http's request decoder (a request it would refuse is
/// refused here), giving the body's delimitation.
fn body_of(
    headers: &[httparse::Header<'_>],
    http11: bool,
    method: &Method,
) -> Result<Body, Refusal> {
    let mut content_length = None;
    let mut transfer_encoding = None;
    let mut host = false;
    let mut websocket = false;
    for h in headers {
        let value = std::str::from_utf8(h.value).ok().map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(Refusal::bad("more than one Content-Length header"));
            }
            let len = value
                .filter(|v| !v.starts_with('+'))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Refusal::bad("Content-Length is not a number of bytes"))?;
            content_length = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding.is_some() {
                return Err(Refusal::bad("more than one Transfer-Encoding header"));
            }
            transfer_encoding = Some(value.unwrap_or_default());
        } else if h.name.eq_ignore_ascii_case("host") {
            if host {
                return Err(Refusal::bad("more than one Host header"));
            }
            host = true;
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            websocket |= value.is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        }
    }
    if http11 && !host {
        return Err(Refusal::bad("an HTTP/1.1 request needs a Host header"));
    }
    if let Some(te) = transfer_encoding {
        if !http11 {
            return Err(Refusal::bad("Transfer-Encoding is not allowed in HTTP/1.0"));
        }
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(Refusal::bad(
                "the only Transfer-Encoding accepted is `chunked`",
            ));
        }
        if content_length.is_some() {
            return Err(Refusal::bad(
                "a request may not have both Content-Length and Transfer-Encoding",
            ));
        }
        return Ok(Body::Chunked);
    }
    if !http11 && method == Method::POST && content_length.is_none() {
        return Err(Refusal::bad("an HTTP/1.0 POST needs a Content-Length"));
    }
    Ok(if websocket {
        Body::Stream
    } else {
        match content_length {
            Some(len) if len > 0 => Body::Length(len),
            _ if method == Method::CONNECT => Body::Stream,
            _ => Body::None,
        }
    })
}

/// Where a connection's one request is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Head,
    Length(u64),
    Chunk(Chunk),
    /// Everything passes through (upgraded connection, or chunk framing we cannot follow).
    Stream,
    /// The request is complete; anything more is dropped.
    Done,
}

/// Where a chunked body is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// The chunk-size line, so far.
    Size(Vec<u8>),
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; the number of bytes of the current one.
    Trailer(usize),
}

/// The deadline that applies to a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    Head,
    Body,
}

/// Follows one request's bytes: holds the head back until it is valid, then passes the
/// head and its body on, and drops what follows.
#[derive(Debug)]
pub struct Scanner {
    phase: Phase,
    head: Vec<u8>,
    dropped: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            phase: Phase::Head,
            head: Vec::new(),
            dropped: 0,
        }
    }
}

impl Scanner {
    /// Which deadline applies: the head's, the body's, or none.
    pub fn waiting(&self) -> Option<Waiting> {
        match self.phase {
            Phase::Head => Some(Waiting::Head),
            Phase::Length(_) | Phase::Chunk(_) => Some(Waiting::Body),
            Phase::Stream | Phase::Done => None,
        }
    }

    /// Bytes dropped after the request.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Takes bytes read from the client; appends those the HTTP server may see to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Refusal> {
        if self.phase != Phase::Head {
            self.body(data, out);
            return Ok(());
        }
        self.head.extend_from_slice(data);
        // A head can only end at a line end: no new parse for bytes without one.
        if !data.contains(&b'\n') && self.head.len() <= HEAD_LIMIT {
            return Ok(());
        }
        let Some((len, body)) = check_head(&self.head)? else {
            return Ok(());
        };
        let head = std::mem::take(&mut self.head);
        out.extend_from_slice(&head[..len]);
        self.phase = match body {
            Body::None => Phase::Done,
            Body::Length(n) => Phase::Length(n),
            Body::Chunked => Phase::Chunk(Chunk::Size(Vec::new())),
            Body::Stream => Phase::Stream,
        };
        self.body(&head[len..], out);
        Ok(())
    }

    fn body(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            match &mut self.phase {
                // Not reached (`feed` parses heads); held back like a head, never passed.
                Phase::Head => {
                    self.head.extend_from_slice(data);
                    return;
                }
                Phase::Stream => {
                    out.extend_from_slice(data);
                    return;
                }
                Phase::Done => {
                    self.dropped += data.len();
                    return;
                }
                Phase::Length(left) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    out.extend_from_slice(&data[..take]);
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        self.phase = Phase::Done;
                    }
                }
                Phase::Chunk(chunk) => {
                    let used = match step_chunk(chunk, data) {
                        Some((used, next)) => {
                            if let Some(next) = next {
                                self.phase = next;
                            }
                            used
                        }
                        None => {
                            // Framing we cannot follow: actix-http refuses it to the
                            // handler, which answers; no body deadline from here on.
                            self.phase = Phase::Stream;
                            0
                        }
                    };
                    out.extend_from_slice(&data[..used]);
                    data = &data[used..];
                }
            }
        }
    }
}

/// One step through a chunked body: how many bytes of `data` it used and, when the body
/// ends, the next phase; `None` for framing that cannot be followed.
fn step_chunk(chunk: &mut Chunk, data: &[u8]) -> Option<(usize, Option<Phase>)> {
    match chunk {
        Chunk::Size(line) => {
            let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                line.extend_from_slice(data);
                return (line.len() <= CHUNK_LINE_LIMIT).then_some((data.len(), None));
            };
            line.extend_from_slice(&data[..nl]);
            let text = std::str::from_utf8(line).ok()?;
            let size = text.split(';').next()?.trim();
            let size = u64::from_str_radix(size, 16).ok()?;
            *chunk = if size == 0 {
                Chunk::Trailer(0)
            } else {
                Chunk::Data(size)
            };
            Some((nl + 1, None))
        }
        Chunk::Data(left) => {
            let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
            *left -= take as u64;
            if *left == 0 {
                *chunk = Chunk::DataEnd;
            }
            Some((take, None))
        }
        Chunk::DataEnd => match data[0] {
            b'\r' => Some((1, None)),
            b'\n' => {
                *chunk = Chunk::Size(Vec::new());
                Some((1, None))
            }
            _ => None,
        },
        Chunk::Trailer(len) => {
            let mut used = 0;
            for b in data {
                used += 1;
                match b {
                    b'\n' if *len == 0 => return Some((used, Some(Phase::Done))),
                    b'\n' => *len = 0,
                    b'\r' => {}
                    _ => *len += 1,
                }
                if *len > CHUNK_LINE_LIMIT {
                    return None;
                }
            }
            Some((used, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(parts: &[&[u8]]) -> (Scanner, Vec<u8>, Result<(), Refusal>) {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        for part in parts {
            if let Err(e) = s.feed(part, &mut out) {
                return (s, out, Err(e));
            }
        }
        (s, out, Ok(()))
    }

    fn refusal(head: &[u8]) -> Refusal {
        match check_head(head) {
            Err(r) => r,
            other => panic!("{:?} accepted: {other:?}", String::from_utf8_lossy(head)),
        }
    }

    #[test]
    fn good_heads_and_their_bodies() {
        let get = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(check_head(get), Ok(Some((get.len(), Body::None))));
        assert_eq!(check_head(&get[..20]), Ok(None));
        let post = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n";
        assert_eq!(check_head(post), Ok(Some((post.len(), Body::Length(7)))));
        let chunked = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n";
        assert_eq!(
            check_head(chunked).map(|h| h.map(|h| h.1)),
            Ok(Some(Body::Chunked))
        );
        let ws = b"GET /v1/yjs/s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(
            check_head(ws).map(|h| h.map(|h| h.1)),
            Ok(Some(Body::Stream))
        );
        let old = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            check_head(old).map(|h| h.map(|h| h.1)),
            Ok(Some(Body::None))
        );
    }

    #[test]
    fn what_actix_would_refuse_empty_is_refused_with_a_reason() {
        let ctl = refusal(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Type: app\x01json\r\n\r\n");
        assert_eq!((ctl.status.as_u16(), ctl.code), (400, "bad_request"));
        assert!(ctl.message.contains("header value"), "{}", ctl.message);
        for head in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(refusal(head).status, StatusCode::BAD_REQUEST);
        }
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let r = refusal(&many);
        assert_eq!((r.status.as_u16(), r.code), (431, "headers_too_large"));
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(HEAD_LIMIT)
        );
        assert_eq!(refusal(long.as_bytes()).status.as_u16(), 431);
        // Too long already before the head is complete.
        let partial = format!("GET /{}", "a".repeat(HEAD_LIMIT + 1));
        assert_eq!(refusal(partial.as_bytes()).status.as_u16(), 431);
    }

    #[test]
    fn refusals_are_complete_json_responses() {
        let raw = Refusal::timeout("slow").response();
        let text = String::from_utf8(raw).expect("utf8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close"));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v, json!({"error": "slow", "code": "timeout"}));
    }

    #[test]
    fn the_head_is_held_back_until_complete_then_the_body_passes() {
        let (s, out, r) = feed_all(&[b"POST /a HTTP/1.1\r\nHo", b"st: x\r\nContent-Length: 4\r\n"]);
        assert_eq!(
            (out.len(), r, s.waiting()),
            (0, Ok(()), Some(Waiting::Head))
        );
        let (s, out, r) = feed_all(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab",
            b"c",
        ]);
        assert!(r.is_ok());
        assert!(out.ends_with(b"\r\n\r\nabc"));
        assert_eq!(s.waiting(), Some(Waiting::Body));
        let (s, out, _) = feed_all(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n",
        ]);
        assert!(
            out.ends_with(b"\r\n\r\nx"),
            "what follows the body is dropped"
        );
        assert_eq!((s.waiting(), s.dropped()), (None, 16));
        let (s, _, r) = feed_all(&[b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n"]);
        assert_eq!((r, s.waiting()), (Ok(()), None));
    }

    #[test]
    fn chunked_bodies_are_followed_to_their_end() {
        let head = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"4;ext=1\r\nabcd\r\n1\r\ne\r\n0\r\nTrailer: t\r\n\r\n";
        // Byte by byte, the body deadline holds until the very last byte.
        let mut s = Scanner::default();
        let mut out = Vec::new();
        s.feed(head, &mut out).expect("head");
        for (i, b) in body.iter().enumerate() {
            assert_eq!(s.waiting(), Some(Waiting::Body), "before byte {i}");
            s.feed(&[*b], &mut out).expect("body byte");
        }
        assert_eq!(s.waiting(), None);
        assert_eq!(&out[head.len()..], &body[..]);
        // Malformed chunk sizes are passed on and no longer timed.
        let (s, out, _) = feed_all(&[head, b"zz\r\nabc"]);
        assert_eq!((s.waiting(), out.len()), (None, head.len() + 7));
    }
}
