//! The HTTP client: keep-alive pools of our own (see pool.rs) per worker, per VU or per
//! iteration, manual redirects so that every hop is counted and cookies apply per hop, and
//! k6's phase timings.
//!
//! Not reqwest or hyper-util's pooled client: on the 150-byte POST loop reqwest's extra
//! layers cost ~20% of the engine's CPU per request, and a pool that dials by itself cannot
//! tell a request what its connection cost. HTTP/1.1 is our own (h1.rs, on the request's
//! task); HTTP/2 is hyper's connection API.

use super::cookies::Jar;
use super::error::{classify, ErrorCode};
use super::pool::{Checkout, Net, Origin, Pool, Sender};
use super::types::{ConnectionPolicy, Headers, RequestSpec, Response, ResponseType, Timings};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// A connection pool with k6's request semantics. Cheap to clone (shares the pool).
#[derive(Clone)]
pub struct Client {
    pool: Rc<Pool>,
    /// Shared: a `Client` is held by every request in flight (see `send`).
    user_agent: Rc<hyper::header::HeaderValue>,
    /// Parsed URLs by text: load tests hit the same few URLs millions of times.
    urls: Rc<RefCell<crate::fasthash::FastMap<String, Rc<Parsed>>>>,
    /// Connection slots: at most this many requests (so sockets) in flight on this pool.
    slots: Option<Rc<tokio::sync::Semaphore>>,
}

/// A URL with what sending to it needs, parsed once.
#[derive(Clone)]
struct Parsed {
    url: Url,
    /// Absolute form, for HTTP/2.
    uri: Uri,
    /// Origin form (path and query), for HTTP/1.1.
    path: String,
    /// Host header value.
    authority: hyper::header::HeaderValue,
    origin: Origin,
}

impl Client {
    /// `max_connections` bounds the sockets of a shared pool (the requests in flight); a
    /// request waits for a slot, and that wait is its `blocked` time.
    pub fn new(
        policy: ConnectionPolicy,
        user_agent: &str,
        max_connections: Option<usize>,
        net: Arc<Net>,
    ) -> Result<Client, String> {
        let max_idle = match policy {
            ConnectionPolicy::NoReuse => 0,
            ConnectionPolicy::PerVu | ConnectionPolicy::PerIteration => 1,
            // Busy sockets are bounded by the slots, idle ones here.
            ConnectionPolicy::Shared => max_connections.unwrap_or(usize::MAX),
        };
        Ok(Client {
            pool: Rc::new(Pool::new(net, max_idle)),
            user_agent: Rc::new(
                hyper::header::HeaderValue::from_str(user_agent)
                    .map_err(|e| format!("option userAgent: {e}"))?,
            ),
            urls: Rc::default(),
            slots: max_connections.map(|n| Rc::new(tokio::sync::Semaphore::new(n.max(1)))),
        })
    }

    /// Sends the request, following up to `max_redirects` redirects. Returns every hop; the
    /// last one is the script's response. The jar is borrowed only between awaits.
    /// A plain fn returning an async block, as `send_one`.
    #[allow(clippy::manual_async_fn)]
    pub fn send<'a, J: Jar>(
        &'a self,
        spec: &'a RequestSpec,
        jar: &'a J,
    ) -> impl Future<Output = Vec<Response>> + 'a {
        async move {
            let mut hops = Vec::with_capacity(1);
            let mut method = spec.method.clone();
            // Borrowed, not cloned: a clone of a request's Bytes allocates its shared header.
            let mut body = spec.body.as_ref();
            let invalid = |text: &str, e: String| {
                failed(
                    spec,
                    text,
                    ErrorCode {
                        code: 1020,
                        message: format!("invalid URL {text:?}: {e}"),
                    },
                )
            };
            let mut url = match self.parsed(&spec.url) {
                Ok(u) => u,
                Err(e) => {
                    hops.push(invalid(&spec.url, e));
                    return hops;
                }
            };
            loop {
                let res = self.send_one(spec, &method, &url, body, jar).await;
                let location = redirect_target(&res, &url.url);
                let status = res.status;
                hops.push(res);
                match location {
                    Some(next) if (hops.len() as u32) <= spec.max_redirects => {
                        // 303, and 301/302 after a POST, become GET without a body (as browsers and k6 do).
                        if status == 303
                            || ((status == 301 || status == 302) && method == Method::POST)
                        {
                            method = Method::GET;
                            body = None;
                        }
                        url = match self.parsed(next.as_str()) {
                            Ok(u) => u,
                            Err(e) => {
                                hops.push(invalid(next.as_str(), e));
                                return hops;
                            }
                        };
                    }
                    _ => return hops,
                }
            }
        }
    }

    /// Shared, not copied: a request to a cached URL costs a reference count.
    fn parsed(&self, text: &str) -> Result<Rc<Parsed>, String> {
        if let Some(p) = self.urls.borrow().get(text) {
            return Ok(p.clone());
        }
        let url = Url::parse(text).map_err(|e| e.to_string())?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} (http and https only)"
                ))
            }
        };
        let host = url.host_str().ok_or("no host")?.to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let bad = |e: hyper::http::uri::InvalidUri| e.to_string();
        let uri: Uri = url.as_str().parse().map_err(bad)?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let authority =
            hyper::header::HeaderValue::from_str(&authority).map_err(|e| e.to_string())?;
        let parsed = Rc::new(Parsed {
            url,
            uri,
            path,
            authority,
            origin: (https, host.into(), port),
        });
        let mut cache = self.urls.borrow_mut();
        if cache.len() >= 10_000 {
            cache.clear(); // unique URLs per request: do not grow without end
        }
        cache.insert(text.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// One hop. A plain fn returning an async block, not an async fn: an async fn stores
    /// each argument twice (rust-lang/rust#62958), and this future is in every request in
    /// flight.
    #[allow(clippy::manual_async_fn)]
    fn send_one<'a, J: Jar>(
        &'a self,
        spec: &'a RequestSpec,
        method: &'a Method,
        parsed: &'a Parsed,
        body: Option<&'a Bytes>,
        jar: &'a J,
    ) -> impl Future<Output = Response> + 'a {
        async move {
            let url = &parsed.url;
            let host = &parsed.origin.1;
            // Blocks end what is not needed across an await: a future stores every local whose
            // scope spans one, moved-from or not (this future is in every request in flight).
            let cookie_value = {
                let mut cookie_pairs = jar
                    .existing()
                    .map(|j| j.borrow().matching(host, url.path(), parsed.origin.0))
                    .unwrap_or_default();
                cookie_pairs.extend(spec.cookies.iter().cloned());
                let header = (!cookie_pairs.is_empty()).then(|| {
                    cookie_pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                match header.as_deref().map(hyper::header::HeaderValue::from_str) {
                    Some(Err(e)) => {
                        return failed(
                            spec,
                            url.as_str(),
                            ErrorCode {
                                code: 1000,
                                message: format!("invalid cookie header: {e}"),
                            },
                        )
                    }
                    Some(Ok(v)) => Some(v),
                    None => None,
                }
            };
            let body = body.unwrap_or(&NO_BODY);
            let has_ua = spec
                .headers
                .iter()
                .any(|(k, _)| k == hyper::header::USER_AGENT);
            let queued = Instant::now();
            let deadline = tokio::time::Instant::from_std(queued) + spec.timeout;
            // A macro, not a closure: a closure's captures would be stored once more.
            macro_rules! fail {
                ($e:expr, $start:expr) => {
                    failed_after(spec, url, method, queued, $e, $start)
                };
            }
            // Held until the body is read, when the connection goes back to the pool.
            // Instants are read only where something may have waited: a clock read is ~20 ns,
            // and a kept-alive request without a slot limit takes none of these waits.
            // A free slot is taken without awaiting: the acquire future is boxed, made only when
            // every slot is busy (like the dial below, it would otherwise sit in every request).
            let (_slot, slot_at) = match &self.slots {
                None => (None, queued),
                Some(slots) => match slots.try_acquire() {
                    Ok(permit) => (Some(permit), queued),
                    Err(_) => {
                        match tokio::time::timeout_at(deadline, Box::pin(slots.acquire())).await {
                            Ok(Ok(permit)) => (Some(permit), Instant::now()),
                            // The semaphore is never closed; a timeout is the request's own timeout.
                            _ => return fail!(timeout_error(), Instant::now()),
                        }
                    }
                },
            };
            let origin = &parsed.origin;
            // Made where it is written (a struct of references kept would be stored again).
            macro_rules! outgoing {
                () => {
                    Outgoing {
                        method,
                        parsed,
                        spec,
                        body,
                        user_agent: (!has_ua).then_some(&*self.user_agent),
                        cookie: cookie_value.as_ref(),
                    }
                };
            }
            let mut fresh = false;
            let (got, info, cost, sent_at) = loop {
                // A kept-alive connection needs no await; dialing (DNS, TCP, TLS, the HTTP/2
                // handshake) is a future of kilobytes, boxed so that every request in flight
                // does not carry it. A retry after a stale connection dials anew, within the
                // same deadline.
                let (
                    Checkout {
                        mut sender,
                        info,
                        cost,
                        reused,
                    },
                    sent_at,
                ) = {
                    // The kept-alive connection is taken in a statement of its own: a value
                    // whose scope spans the dial's await would be stored in the future.
                    let checkout = 'take: {
                        if !fresh {
                            if let Some(c) = self.pool.reuse_h1_now(origin) {
                                break 'take Ok((c, slot_at));
                            }
                        }
                        let get = Box::pin(async {
                            if fresh {
                                self.pool.open(origin, url.as_str()).await
                            } else {
                                self.pool.checkout(origin, url.as_str()).await
                            }
                        });
                        match tokio::time::timeout_at(deadline, get).await {
                            Ok(c) => c.map(|c| (c, Instant::now())),
                            Err(_) => return fail!(timeout_error(), slot_at),
                        }
                    };
                    match checkout {
                        Ok(c) => c,
                        Err(e) => return fail!(e, slot_at),
                    }
                };
                match sender {
                    Sender::H1(ref mut conn) => {
                        let head_request = *method == Method::HEAD;
                        let keep_body = spec.response_type != ResponseType::None;
                        let timer = pin!(tokio::time::sleep_until(deadline));
                        let (head, rest) = outgoing!().h1_request();
                        let outcome = conn
                            .exchange(head, rest, head_request, keep_body, timer)
                            .await;
                        match outcome {
                            None => return fail!(timeout_error(), slot_at),
                            // A kept-alive connection the server closed meanwhile: once more on a new
                            // one, if nothing was sent or the request is safe to repeat (Go's
                            // rule, which k6 follows); a POST the server may have read is not
                            // sent twice.
                            Some(Err(e))
                                if reused
                                    && !fresh
                                    && (e.nothing_sent()
                                        || (e.stale() && replayable(method, spec))) =>
                            {
                                fresh = true
                            }
                            Some(Err(e)) => return fail!(h1_error(e, url.as_str()), slot_at),
                            Some(Ok(x)) => {
                                if let (true, Sender::H1(conn)) = (x.reusable, sender) {
                                    self.pool.checkin(origin, conn, info);
                                }
                                let got = Received::from_h1(x, sent_at, Instant::now());
                                break (got, info, cost, sent_at);
                            }
                        }
                    }
                    Sender::H2(mut sender) => {
                        // Boxed whole like the dial above: HTTP/1.1 requests should not carry
                        // its state (a future stores every local of every branch).
                        let exchange = Box::pin(async {
                            let req = outgoing!();
                            let sending = sender.send_request(req.h2_request());
                            let resp = match tokio::time::timeout_at(deadline, sending).await {
                                Err(_) => return Err(timeout_error()),
                                Ok(Err(e)) => return Err(classify(&e, url.as_str())),
                                Ok(Ok(resp)) => resp,
                            };
                            let headers_at = Instant::now();
                            let got = Received::from_h2(resp, &req, url.as_str(), deadline).await;
                            Ok(got.timed(sent_at, headers_at, Instant::now()))
                        });
                        match exchange.await {
                            Err(e) => return fail!(e, slot_at),
                            Ok(got) => break (got, info, cost, sent_at),
                        }
                    }
                }
            };
            for (k, v) in got.headers.iter() {
                if k == "set-cookie" {
                    jar.get()
                        .borrow_mut()
                        .store(&String::from_utf8_lossy(v), host, url.path());
                }
            }
            let mut timings = got.timings;
            // Everything before the send that is not connecting or TLS is blocked time (k6): a
            // pool slot, the turn to share a first HTTP/2 connection, the DNS lookup (also
            // reported alone as looking_up). None of it is in duration.
            let before_send =
                (sent_at - queued).saturating_sub(cost.connecting + cost.tls_handshaking);
            timings.blocked = ms(before_send);
            timings.looking_up = ms(cost.looking_up);
            timings.connecting = ms(cost.connecting);
            timings.tls_handshaking = ms(cost.tls_handshaking);
            Response {
                method: method.clone(),
                url: url.as_str().to_owned(),
                status: if got.error.is_some() { 0 } else { got.status },
                proto: got.proto,
                tls_version: info.tls_version,
                headers: got.headers,
                body: if got.error.is_some() { None } else { got.body },
                error: got.error,
                timings,
                bytes_sent: got.sent,
                bytes_received: got.received,
            }
        }
    }
}

/// The body of a request without one.
static NO_BODY: Bytes = Bytes::new();

/// A request that failed at `start` after it was queued at `queued`.
fn failed_after(
    spec: &RequestSpec,
    url: &Url,
    method: &Method,
    queued: Instant,
    e: ErrorCode,
    start: Instant,
) -> Response {
    let mut r = failed(spec, url.as_str(), e);
    r.method = method.clone();
    r.timings.blocked = ms(start - queued);
    r.timings.duration = ms(start.elapsed());
    r.timings.waiting = r.timings.duration;
    r
}

/// A request ready to be written, in either protocol.
struct Outgoing<'a> {
    method: &'a Method,
    parsed: &'a Parsed,
    spec: &'a RequestSpec,
    body: &'a Bytes,
    /// The default User-Agent, unless the script set one.
    user_agent: Option<&'a hyper::header::HeaderValue>,
    cookie: Option<&'a hyper::header::HeaderValue>,
}

impl<'a> Outgoing<'a> {
    /// The HTTP/1.1 request head, with room for `then` bytes more. Content-Length is ours: a
    /// script's own would misframe.
    fn h1_head(&self, then: usize) -> Vec<u8> {
        let p = self.parsed;
        let mut h = Vec::with_capacity(256 + then);
        h.extend_from_slice(self.method.as_str().as_bytes());
        h.push(b' ');
        h.extend_from_slice(p.path.as_bytes());
        h.extend_from_slice(b" HTTP/1.1\r\n");
        let mut line = |name: &[u8], value: &[u8]| {
            h.extend_from_slice(name);
            h.extend_from_slice(b": ");
            h.extend_from_slice(value);
            h.extend_from_slice(b"\r\n");
        };
        let has_host = self
            .spec
            .headers
            .iter()
            .any(|(k, _)| k == hyper::header::HOST);
        if !has_host {
            line(b"host", p.authority.as_bytes());
        }
        for (k, v) in &self.spec.headers {
            if k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING {
                line(k.as_str().as_bytes(), v.as_bytes());
            }
        }
        if let Some(ua) = self.user_agent {
            line(b"user-agent", ua.as_bytes());
        }
        if let Some(c) = self.cookie {
            line(b"cookie", c.as_bytes());
        }
        let expects_body = matches!(*self.method, Method::POST | Method::PUT | Method::PATCH);
        if !self.body.is_empty() || expects_body {
            let mut digits = [0u8; 20];
            line(b"content-length", decimal(self.body.len(), &mut digits));
        }
        h.extend_from_slice(b"\r\n");
        h
    }

    /// The head with a small body appended (one buffer, one write), and what is left to
    /// write after it.
    fn h1_request(&self) -> (Vec<u8>, &'a [u8]) {
        let small = self.body.len() <= 16 * 1024;
        let mut h = self.h1_head(if small { self.body.len() } else { 0 });
        if small {
            h.extend_from_slice(self.body);
            (h, &[])
        } else {
            (h, self.body)
        }
    }

    /// The request for hyper's HTTP/2 client (absolute URI; hyper sets :authority).
    fn h2_request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.parsed.uri.clone();
        let h = req.headers_mut();
        h.reserve(self.spec.headers.len() + 2);
        for (k, v) in &self.spec.headers {
            h.append(k.clone(), v.clone());
        }
        if let Some(ua) = self.user_agent {
            h.insert(hyper::header::USER_AGENT, ua.clone());
        }
        if let Some(c) = self.cookie {
            h.insert(hyper::header::COOKIE, c.clone());
        }
        req
    }

    /// The request's size as HTTP/1.1 would write it (data_sent for HTTP/2, whose frames
    /// are compressed and shared).
    fn h1_size(&self) -> u64 {
        self.h1_head(0).len() as u64 + self.body.len() as u64
    }
}

/// What came back, in either protocol.
struct Received {
    status: u16,
    proto: &'static str,
    headers: Headers,
    body: Option<Bytes>,
    error: Option<ErrorCode>,
    sent: u64,
    received: u64,
    /// sending, waiting and receiving set; the set-up phases are the caller's.
    timings: Timings,
}

impl Received {
    /// HTTP/1.1 splits sending from waiting at the last byte written and waiting from
    /// receiving at the first byte read, as k6 does.
    fn from_h1(x: super::h1::Exchange, sent_at: Instant, end: Instant) -> Received {
        let sending = ms(x.written_at - sent_at);
        let waiting = ms(x.first_byte_at.saturating_duration_since(x.written_at));
        let receiving = ms(end.saturating_duration_since(x.first_byte_at));
        Received {
            status: x.status,
            proto: if x.http10 { "HTTP/1.0" } else { "HTTP/1.1" },
            headers: x.headers,
            body: x.body.map(Bytes::from),
            error: None,
            sent: x.sent,
            received: x.received,
            timings: Timings {
                sending,
                waiting,
                receiving,
                duration: sending + waiting + receiving,
                ..Timings::default()
            },
        }
    }

    async fn from_h2(
        resp: hyper::Response<hyper::body::Incoming>,
        req: &Outgoing<'_>,
        url: &str,
        deadline: tokio::time::Instant,
    ) -> Received {
        let status = resp.status();
        let mut received = 17 + status.canonical_reason().map_or(0, str::len) as u64;
        for (k, v) in resp.headers() {
            received += (k.as_str().len() + v.len() + 4) as u64;
        }
        // Copied into one buffer (hyper's values would pin the connection's read buffer for as
        // long as Lua keeps the response); scripts rarely read them, so no strings yet.
        let (head, incoming) = resp.into_parts();
        let headers = Headers::from_map(&head.headers);
        let (body, error) = read_body(
            incoming,
            req.spec.response_type,
            &mut received,
            url,
            deadline,
        )
        .await;
        Received {
            status: status.as_u16(),
            proto: "HTTP/2.0",
            headers,
            body,
            error,
            sent: req.h1_size(),
            received,
            timings: Timings::default(),
        }
    }

    /// On a multiplexed HTTP/2 connection the write and read instants belong to no single
    /// request, so sending is 0 and waiting runs to the response headers.
    fn timed(mut self, sent_at: Instant, headers_at: Instant, end: Instant) -> Received {
        let t = &mut self.timings;
        t.waiting = ms(headers_at - sent_at);
        t.receiving = ms(end - headers_at);
        t.duration = t.waiting + t.receiving;
        self
    }
}

/// `n` in decimal, without allocating.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// An HTTP/1.1 failure as k6 reports it.
/// Whether a request may be sent again after its connection failed: an idempotent method
/// without side effects, or one that carries an idempotency key (Go's transport rule).
fn replayable(method: &Method, spec: &RequestSpec) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || spec
        .headers
        .iter()
        .any(|(k, _)| k == "idempotency-key" || k == "x-idempotency-key")
}

fn h1_error(e: super::h1::H1Error, url: &str) -> ErrorCode {
    use super::h1::H1Error;
    match e {
        H1Error::Io { err, .. } | H1Error::NotSent(err) => classify(&err, url),
        H1Error::Closed { .. } => ErrorCode {
            code: 1000,
            message: format!("{url}: EOF (the server closed the connection)"),
        },
        H1Error::Malformed(m) => ErrorCode {
            code: 1000,
            message: format!("{url}: malformed HTTP response: {m}"),
        },
    }
}

async fn read_body(
    mut body: hyper::body::Incoming,
    kind: ResponseType,
    received: &mut u64,
    url: &str,
    deadline: tokio::time::Instant,
) -> (Option<Bytes>, Option<ErrorCode>) {
    let mut buf: Option<bytes::BytesMut> = None;
    let mut single: Option<Bytes> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (None, Some(timeout_error())),
            Ok(None) => break,
            Ok(Some(Err(e))) => return (None, Some(classify(&e, url))),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        *received += data.len() as u64;
        if kind == ResponseType::None {
            continue;
        }
        // Most bodies arrive in one frame: keep it without copying.
        match (&mut buf, single.take()) {
            (Some(b), _) => b.extend_from_slice(&data),
            (None, None) => single = Some(data),
            (None, Some(first)) => {
                let mut b = bytes::BytesMut::from(&first[..]);
                b.extend_from_slice(&data);
                buf = Some(b);
            }
        }
    }
    if kind == ResponseType::None {
        return (None, None);
    }
    (
        Some(buf.map(|b| b.freeze()).or(single).unwrap_or_default()),
        None,
    )
}

fn timeout_error() -> ErrorCode {
    ErrorCode {
        code: 1050,
        message: "request timeout".into(),
    }
}

fn redirect_target(res: &Response, base: &Url) -> Option<Url> {
    if !matches!(res.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let loc = std::str::from_utf8(res.headers.get("location")?).ok()?;
    base.join(loc).ok()
}

fn failed(spec: &RequestSpec, url: &str, error: ErrorCode) -> Response {
    Response {
        method: spec.method.clone(),
        url: url.to_string(),
        status: 0,
        proto: "",
        tls_version: "",
        headers: Headers::default(),
        body: None,
        error: Some(error),
        timings: Timings::default(),
        bytes_sent: 0,
        bytes_received: 0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::connect::Resolver;
    use crate::http::cookies::CookieJar;
    use crate::http::tls::{Tls, TlsOptions};

    struct OneJar(RefCell<CookieJar>);

    impl Jar for OneJar {
        fn existing(&self) -> Option<&RefCell<CookieJar>> {
            Some(&self.0)
        }
        fn get(&self) -> &RefCell<CookieJar> {
            &self.0
        }
    }

    /// Every request in flight holds this future (thousands at once when the server is
    /// slow): 1,432 bytes before the exchange was split into steps, 712 after
    /// (`rustc -Zprint-type-sizes`). A budget, so that a new local kept across an await
    /// shows up here rather than in the journey's peak RSS.
    #[test]
    fn a_request_in_flight_stays_small() {
        let net = Arc::new(Net {
            resolver: Resolver::new(Default::default()).expect("resolver"),
            tls: Tls::new(TlsOptions::default()).expect("tls"),
            h2c: false,
        });
        let client = Client::new(ConnectionPolicy::Shared, "engine-test", Some(10), net).unwrap();
        let spec = RequestSpec {
            method: Method::POST,
            url: "http://127.0.0.1:9/track".into(),
            body: Some(Bytes::from_static(b"{}")),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            max_redirects: 10,
            response_type: ResponseType::Text,
            cookies: Vec::new(),
        };
        let jar = OneJar(RefCell::default());
        let send = client.send(&spec, &jar);
        let size = std::mem::size_of_val(&send);
        assert!(size <= 800, "Client::send's future is {size} bytes");
    }
}
