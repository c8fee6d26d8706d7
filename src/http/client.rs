//! The HTTP client: one keep-alive pool (hyper's) per worker or per VU, manual redirects so
//! that every hop is counted and cookies apply per hop, and wall-clock phase timings.
//!
//! Built on hyper-util's pooled client rather than reqwest: on the 150-byte POST loop
//! reqwest's extra layers (redirect and retry services, URL re-parsing) cost ~20% of the
//! engine's CPU per request, and its connector hides the phases issue #7 needs to time.

use super::cookies::CookieJar;
use super::error::{classify, ErrorCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use url::Url;

/// How VUs share connections (`--connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionPolicy {
    /// One keep-alive pool per worker thread, shared by its VUs (the default: 25k VUs need
    /// only as many sockets as requests in flight).
    Shared,
    /// One pool per VU, as k6 and browsers do: a socket per VU.
    PerVu,
    /// A new connection for every request (k6's noConnectionReuse).
    NoReuse,
}

/// What to do with a response body (k6's `responseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Text,
    Binary,
    /// Read and count the body, but never copy it to the script.
    None,
}

/// One request as the script described it.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub timeout: Duration,
    pub max_redirects: u32,
    pub response_type: ResponseType,
    /// Cookies given in params.cookies, sent in addition to the jar's.
    pub cookies: Vec<(String, String)>,
}

/// Phase timings in milliseconds, k6's names. Measured here: `blocked` (waiting for a
/// connection slot of a bounded pool), `waiting` (to the response headers) and `receiving`
/// (the body). The pooled client hides the connect and write phases, so `connecting`,
/// `tls_handshaking` and `sending` are 0 and a new connection's set-up lands in `waiting`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub blocked: f64,
    pub connecting: f64,
    pub tls_handshaking: f64,
    pub sending: f64,
    pub waiting: f64,
    pub receiving: f64,
    pub duration: f64,
}

/// One hop's outcome. A transport failure is status 0 with `error` set, as in k6.
#[derive(Debug, Clone)]
pub struct Response {
    pub method: Method,
    pub url: String,
    pub status: u16,
    pub status_text: String,
    pub proto: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub error: Option<ErrorCode>,
    pub timings: Timings,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub set_cookies: Vec<super::Cookie>,
}

impl Response {
    /// k6's error_code: the transport code, else 1000+status for 4xx/5xx, else 0.
    pub fn error_code(&self) -> u32 {
        match &self.error {
            Some(e) => e.code,
            None if self.status >= 400 => 1000 + self.status as u32,
            None => 0,
        }
    }
}

/// A connection pool with k6's request semantics. Cheap to clone (shares the pool).
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    user_agent: String,
    /// Parsed URLs by text: load tests hit the same few URLs millions of times.
    urls: Rc<RefCell<crate::fasthash::FastMap<String, (Url, Uri)>>>,
    /// Connection slots: at most this many requests (so sockets) in flight on this pool.
    slots: Option<Rc<tokio::sync::Semaphore>>,
}

impl Client {
    /// `max_connections` bounds the sockets of a shared pool (the requests in flight); a
    /// request waits for a slot, and that wait is its `blocked` time.
    pub fn new(
        policy: ConnectionPolicy,
        user_agent: &str,
        max_connections: Option<usize>,
    ) -> Result<Client, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let mut b = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(Duration::from_secs(90));
        match (policy, max_connections) {
            (ConnectionPolicy::NoReuse, _) => b.pool_max_idle_per_host(0),
            (ConnectionPolicy::PerVu, _) => b.pool_max_idle_per_host(1),
            // Busy sockets are bounded by the slots, idle ones here: at most 2n per host.
            (ConnectionPolicy::Shared, Some(n)) => b.pool_max_idle_per_host(n),
            (ConnectionPolicy::Shared, None) => &mut b,
        };
        Ok(Client {
            inner: b.build(connector),
            user_agent: user_agent.to_string(),
            urls: Rc::default(),
            slots: max_connections.map(|n| Rc::new(tokio::sync::Semaphore::new(n.max(1)))),
        })
    }

    /// Sends the request, following up to `max_redirects` redirects. Returns every hop; the
    /// last one is the script's response. The jar is borrowed only between awaits.
    pub async fn send(&self, spec: &RequestSpec, jar: &RefCell<CookieJar>) -> Vec<Response> {
        let mut hops = Vec::with_capacity(1);
        let mut method = spec.method.clone();
        let mut body = spec.body.clone();
        let mut url = match self.parse_url(&spec.url) {
            Ok(u) => u,
            Err(e) => {
                hops.push(failed(
                    spec,
                    &spec.url,
                    ErrorCode {
                        code: 1020,
                        message: format!("invalid URL {:?}: {e}", spec.url),
                    },
                ));
                return hops;
            }
        };
        loop {
            let res = self.send_one(spec, &method, &url, body.clone(), jar).await;
            let location = redirect_target(&res, &url);
            let status = res.status;
            hops.push(res);
            match location {
                Some(next) if (hops.len() as u32) <= spec.max_redirects => {
                    // 303, and 301/302 after a POST, become GET without a body (as browsers and k6 do).
                    if status == 303 || ((status == 301 || status == 302) && method == Method::POST)
                    {
                        method = Method::GET;
                        body = None;
                    }
                    url = next;
                }
                _ => return hops,
            }
        }
    }

    fn parse_url(&self, text: &str) -> Result<Url, String> {
        self.parsed(text).map(|(u, _)| u)
    }

    fn parsed(&self, text: &str) -> Result<(Url, Uri), String> {
        if let Some(u) = self.urls.borrow().get(text) {
            return Ok(u.clone());
        }
        let url = Url::parse(text).map_err(|e| e.to_string())?;
        if url.scheme() != "http" {
            return Err(format!(
                "scheme {:?} is not supported yet (plain http only; see README)",
                url.scheme()
            ));
        }
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
        let mut cache = self.urls.borrow_mut();
        if cache.len() >= 10_000 {
            cache.clear(); // unique URLs per request: do not grow without end
        }
        cache.insert(text.to_string(), (url.clone(), uri.clone()));
        Ok((url, uri))
    }

    async fn send_one(
        &self,
        spec: &RequestSpec,
        method: &Method,
        url: &Url,
        body: Option<Bytes>,
        jar: &RefCell<CookieJar>,
    ) -> Response {
        let host = url.host_str().unwrap_or("").to_string();
        let mut cookie_pairs = jar
            .borrow()
            .matching(&host, url.path(), url.scheme() == "https");
        cookie_pairs.extend(spec.cookies.iter().cloned());
        let uri = match self.parsed(url.as_str()) {
            Ok((_, uri)) => uri,
            Err(e) => {
                return failed(
                    spec,
                    url.as_str(),
                    ErrorCode {
                        code: 1020,
                        message: format!("invalid URL {:?}: {e}", url.as_str()),
                    },
                )
            }
        };
        let mut req = Request::builder().method(method.clone()).uri(uri);
        let mut sent = (method.as_str().len() + url.as_str().len() + 12 + host.len() + 8) as u64;
        let mut has_ua = false;
        for (k, v) in &spec.headers {
            has_ua |= k.eq_ignore_ascii_case("user-agent");
            sent += (k.len() + v.len() + 4) as u64;
            req = req.header(k.as_str(), v.as_str());
        }
        if !has_ua {
            sent += (12 + self.user_agent.len()) as u64;
            req = req.header("User-Agent", self.user_agent.as_str());
        }
        if !cookie_pairs.is_empty() {
            let value = cookie_pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            sent += (value.len() + 10) as u64;
            req = req.header("Cookie", value);
        }
        if let Some(b) = &body {
            sent += b.len() as u64 + 20;
        }
        let req = match req.body(Full::new(body.unwrap_or_default())) {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    spec,
                    url.as_str(),
                    ErrorCode {
                        code: 1000,
                        message: format!("invalid request: {e}"),
                    },
                )
            }
        };
        let queued = Instant::now();
        let deadline = tokio::time::Instant::from_std(queued) + spec.timeout;
        let fail = |e: ErrorCode, start: Instant| {
            let mut r = failed(spec, url.as_str(), e);
            r.method = method.clone();
            r.timings.blocked = ms(start - queued);
            r.timings.duration = ms(start.elapsed());
            r.timings.waiting = r.timings.duration;
            r
        };
        // Held until the body is read, when the connection goes back to the pool.
        let _slot = match &self.slots {
            None => None,
            Some(slots) => match tokio::time::timeout_at(deadline, slots.acquire()).await {
                Ok(Ok(permit)) => Some(permit),
                // The semaphore is never closed; a timeout is the request's own timeout.
                _ => return fail(timeout_error(), Instant::now()),
            },
        };
        let start = Instant::now();
        let blocked = ms(start - queued);
        let resp = match tokio::time::timeout_at(deadline, self.inner.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return fail(classify(&e, url.as_str()), start),
            Err(_) => return fail(timeout_error(), start),
        };
        let headers_at = Instant::now();
        let status = resp.status();
        let proto = match resp.version() {
            hyper::Version::HTTP_2 => "HTTP/2.0",
            hyper::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let mut received = 17 + status.canonical_reason().map_or(0, str::len) as u64;
        let mut headers = Vec::with_capacity(resp.headers().len());
        let mut set_cookies = Vec::new();
        for (k, v) in resp.headers() {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            received += (k.as_str().len() + v.len() + 4) as u64;
            if k == hyper::header::SET_COOKIE {
                if let Some(c) = jar.borrow_mut().store(&v, &host, url.path()) {
                    set_cookies.push(c);
                }
            }
            headers.push((canonical_header(k.as_str()), v));
        }
        let (body, error) = read_body(
            resp,
            spec.response_type,
            &mut received,
            url.as_str(),
            deadline,
        )
        .await;
        let end = Instant::now();
        let waiting = ms(headers_at - start);
        let receiving = ms(end - headers_at);
        Response {
            method: method.clone(),
            url: url.to_string(),
            status: if error.is_some() { 0 } else { status.as_u16() },
            status_text: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            proto,
            headers,
            body,
            error,
            timings: Timings {
                blocked,
                waiting,
                receiving,
                duration: waiting + receiving,
                ..Default::default()
            },
            bytes_sent: sent,
            bytes_received: received,
            set_cookies,
        }
    }
}

async fn read_body(
    resp: hyper::Response<hyper::body::Incoming>,
    kind: ResponseType,
    received: &mut u64,
    url: &str,
    deadline: tokio::time::Instant,
) -> (Option<Bytes>, Option<ErrorCode>) {
    let mut body = resp.into_body();
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
    let loc = res
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))?;
    base.join(&loc.1).ok()
}

fn failed(spec: &RequestSpec, url: &str, error: ErrorCode) -> Response {
    Response {
        method: spec.method.clone(),
        url: url.to_string(),
        status: 0,
        status_text: String::new(),
        proto: "",
        headers: Vec::new(),
        body: None,
        error: Some(error),
        timings: Timings::default(),
        bytes_sent: 0,
        bytes_received: 0,
        set_cookies: Vec::new(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// k6 (Go) shows header names canonicalised: "content-type" -> "Content-Type".
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}
