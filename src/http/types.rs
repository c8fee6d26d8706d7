//! The HTTP types the rest of the engine and every file of this module share: the request
//! a script asks for, the response with its phase timings, headers kept flat, and how VUs
//! share connections.

use super::error::ErrorCode;
use bytes::Bytes;
use hyper::Method;
use std::time::Duration;

/// How VUs share connections (`--connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionPolicy {
    /// One keep-alive pool per worker thread, shared by its VUs (the default: 25k VUs need
    /// only as many sockets as requests in flight).
    Shared,
    /// One pool per VU, as k6 and browsers do: a socket per VU and origin.
    PerVu,
    /// A VU's pool is closed at the end of each iteration (k6's noVUConnectionReuse).
    PerIteration,
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
    /// Validated once when the script's params are read.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    pub body: Option<Bytes>,
    pub timeout: Duration,
    pub max_redirects: u32,
    pub response_type: ResponseType,
    /// Cookies given in params.cookies, sent in addition to the jar's.
    pub cookies: Vec<(String, String)>,
}

/// Phase timings in milliseconds, k6's names (README: "what is measured"). `duration` is
/// sending + waiting + receiving; connection set-up is outside it, as in k6.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Waiting for a connection slot, plus the DNS lookup of a new connection (k6's sum).
    pub blocked: f64,
    /// The DNS lookup alone (not in k6).
    pub looking_up: f64,
    pub connecting: f64,
    pub tls_handshaking: f64,
    pub sending: f64,
    pub waiting: f64,
    pub receiving: f64,
    pub duration: f64,
}

/// Response headers in one allocation: `name\0value\0` per header, names lower-case.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    flat: Vec<u8>,
}

impl Headers {
    pub(super) fn from_map(map: &hyper::HeaderMap) -> Headers {
        let size = map
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 2)
            .sum();
        let mut flat = Vec::with_capacity(size);
        for (k, v) in map {
            flat.extend_from_slice(k.as_str().as_bytes());
            flat.push(0);
            flat.extend_from_slice(v.as_bytes());
            flat.push(0);
        }
        Headers { flat }
    }

    /// From a parsed head; names are stored in lower case.
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])> + Clone) -> Headers {
        let size = pairs.clone().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut flat = Vec::with_capacity(size);
        for (k, v) in pairs {
            flat.extend(k.bytes().map(|b| b.to_ascii_lowercase()));
            flat.push(0);
            flat.extend_from_slice(v);
            flat.push(0);
        }
        Headers { flat }
    }

    /// The packed form (`name\0value\0`...), to store elsewhere and read with `iter_flat`.
    pub fn as_flat(&self) -> &[u8] {
        &self.flat
    }

    /// (name, value) pairs in the order received, repeated names included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        Headers::iter_flat(&self.flat)
    }

    /// `iter` over a packed form.
    pub fn iter_flat(flat: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
        let mut parts = flat.split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = parts.next().filter(|n| !n.is_empty())?;
            let value = parts.next()?;
            Some((std::str::from_utf8(name).unwrap_or(""), value))
        })
    }

    /// The first value of a header (`name` in lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn count(&self) -> usize {
        self.iter().count()
    }
}

/// One hop's outcome. A transport failure is status 0 with `error` set, as in k6.
#[derive(Debug, Clone)]
pub struct Response {
    pub method: Method,
    pub url: String,
    pub status: u16,
    pub proto: &'static str,
    /// "tls1.3", "tls1.2", or "" for plain HTTP.
    pub tls_version: &'static str,
    /// As received; `canonical_header` gives k6's spelling of a name.
    pub headers: Headers,
    pub body: Option<Bytes>,
    pub error: Option<ErrorCode>,
    pub timings: Timings,
    pub bytes_sent: u64,
    pub bytes_received: u64,
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

/// k6 (Go) shows header names canonicalised: "content-type" -> "Content-Type".
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}
