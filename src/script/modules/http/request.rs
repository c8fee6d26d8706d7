//! `http.*` arguments -> an [`http::RequestSpec`](crate::http::RequestSpec): method, url,
//! body and params (headers, timeout, tags, redirects, cookies, responseType,
//! responseCallback), read where they lie on the Lua stack (see `stack.rs` for why).

use super::callback::Expected;
use crate::http::{RequestSpec, ResponseType};
use crate::options::duration;
use crate::script::stack::Slot;
use hyper::Method;
use std::time::Duration;

/// A request ready to send plus what the metrics need from the script's params.
pub struct Prepared {
    pub spec: RequestSpec,
    pub user_tags: Vec<(String, String)>,
    /// params.responseType; None leaves the run's default (discardResponseBodies).
    pub response_type: Option<ResponseType>,
    /// params.responseCallback; None leaves the default (`http.setResponseCallback`).
    pub expected: Option<Expected>,
    /// params.redirects was given (no "Stopped after N redirects" warning then, as in k6).
    pub redirects_given: bool,
}

/// Reads `(method, url, body, params)` as the prelude yields them, where they lie on the
/// Lua stack (see `stack.rs` for why).
pub fn read_request(method: Slot, url: Slot, body: Slot, params: Slot) -> Result<Prepared, String> {
    let method = method.bytes().unwrap_or_default();
    let method = Method::from_bytes(method).map_err(|_| {
        format!(
            "http.request: invalid method {:?}",
            String::from_utf8_lossy(method)
        )
    })?;
    let url = match url.bytes() {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => {
            return Err(format!(
                "http request: url must be a string, got {}",
                url.type_name()
            ))
        }
    };
    let mut p = Prepared {
        spec: RequestSpec {
            method,
            url,
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(60),
            max_redirects: 10,
            response_type: ResponseType::Text,
            cookies: Vec::new(),
        },
        user_tags: Vec::new(),
        response_type: None,
        expected: None,
        redirects_given: false,
    };
    if params.is_table() {
        read_params(params, &mut p)?;
    } else if !params.is_nil() {
        return Err(format!(
            "http request: params must be a table, got {}",
            params.type_name()
        ));
    }
    let spec = &mut p.spec;
    spec.body = if let Some(b) = body.bytes() {
        Some(bytes::Bytes::copy_from_slice(b))
    } else if body.is_table() {
        // k6 form-encodes an object body.
        if !spec
            .headers
            .iter()
            .any(|(k, _)| k == hyper::header::CONTENT_TYPE)
        {
            spec.headers.push((
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-www-form-urlencoded"),
            ));
        }
        Some(bytes::Bytes::from(form_encode(&text_pairs(body, "body")?)))
    } else if body.is_nil() {
        None
    } else {
        let text = body.text().ok_or_else(|| {
            format!(
                "http request: body must be a string or a table, got {}",
                body.type_name()
            )
        })?;
        Some(bytes::Bytes::from(text))
    };
    Ok(p)
}

/// A table of scalars as text pairs (tags, form fields, cookies).
fn text_pairs(t: Slot, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    t.pairs(|k, v| {
        let key = k.text().unwrap_or_default();
        let value = v.text().ok_or_else(|| {
            format!(
                "{what}.{key}: expected a string or number, got {}",
                v.type_name()
            )
        })?;
        out.push((key, value));
        Ok(())
    })?;
    Ok(out)
}

type Header = (hyper::header::HeaderName, hyper::header::HeaderValue);

/// Headers validated before, by a hash of name and value; each entry keeps the bytes it was
/// made from, and a hash that matches other bytes is validated anew. Scripts send the same
/// few headers with every request: validating a name and copying a value was ~1,000
/// instructions of a POST with one header; a clone of both is two reference counts.
/// An entry: the name's and value's bytes end to end, and where the name ends.
struct KnownHeaders(crate::fasthash::FastMap<u64, (Box<[u8]>, usize, Header)>);

/// Unique values (a request id per request) must not grow it without end.
const MAX_KNOWN_HEADERS: usize = 4096;

thread_local! {
    static KNOWN_HEADERS: std::cell::RefCell<KnownHeaders> =
        std::cell::RefCell::new(KnownHeaders(Default::default()));
}

impl KnownHeaders {
    fn key(name: &[u8], value: &[u8]) -> u64 {
        use std::hash::Hasher;
        let mut h = crate::fasthash::Fold::default();
        h.write(name);
        h.write(value);
        h.finish()
    }

    /// The validated pair for these bytes, made by `make` (and kept) if not known.
    fn get(
        name: &[u8],
        value: &[u8],
        make: impl FnOnce() -> Result<Header, String>,
    ) -> Result<Header, String> {
        Self::get_keyed(Self::key(name, value), name, value, make)
    }

    fn get_keyed(
        key: u64,
        name: &[u8],
        value: &[u8],
        make: impl FnOnce() -> Result<Header, String>,
    ) -> Result<Header, String> {
        let same = |bytes: &[u8], split: usize| {
            split == name.len()
                && bytes.len() == name.len() + value.len()
                && bytes[..split] == *name
                && bytes[split..] == *value
        };
        let known = KNOWN_HEADERS.with_borrow(|k| {
            k.0.get(&key)
                .filter(|(bytes, split, _)| same(bytes, *split))
                .map(|(_, _, h)| h.clone())
        });
        if let Some(h) = known {
            return Ok(h);
        }
        let made = make()?;
        KNOWN_HEADERS.with_borrow_mut(|k| {
            if k.0.len() >= MAX_KNOWN_HEADERS {
                k.0.clear();
            }
            let bytes = [name, value].concat().into();
            k.0.insert(key, (bytes, name.len(), made.clone()));
        });
        Ok(made)
    }
}

/// params.headers as validated HTTP headers, straight from the Lua strings' bytes.
fn header_pairs(t: Slot) -> Result<Vec<Header>, String> {
    let mut out = Vec::with_capacity(4);
    t.pairs(|k, v| {
        if let (Some(name), Some(value)) = (k.bytes(), v.bytes()) {
            out.push(KnownHeaders::get(name, value, || one_header(k, v))?);
        } else {
            out.push(one_header(k, v)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// One `params.headers` entry, validated.
fn one_header(k: Slot, v: Slot) -> Result<Header, String> {
    use hyper::header::{HeaderName, HeaderValue};
    let name = match k.bytes() {
        Some(b) => HeaderName::from_bytes(b),
        None => HeaderName::from_bytes(k.text().unwrap_or_default().as_bytes()),
    }
    .map_err(|_| {
        format!(
            "params.headers: invalid header name {:?}",
            k.text().unwrap_or_else(|| k.type_name().into())
        )
    })?;
    let value = match v.bytes() {
        Some(b) => HeaderValue::from_bytes(b),
        None => HeaderValue::from_str(&v.text().ok_or_else(|| {
            format!(
                "params.headers: value for {name} must be a string or number, got {}",
                v.type_name()
            )
        })?),
    }
    .map_err(|_| format!("params.headers: invalid value for {name}"))?;
    Ok((name, value))
}

/// Reads params in one pass over the table (most scripts set one or two keys). Unknown keys
/// are ignored, as in k6.
fn read_params(params: Slot, p: &mut Prepared) -> Result<(), String> {
    params.pairs(|k, v| {
        let Some(key) = k.bytes() else { return Ok(()) };
        match key {
            b"headers" => p.spec.headers = header_pairs(v)?,
            b"timeout" => p.spec.timeout = param_timeout(v)?,
            b"tags" => p.user_tags = text_pairs(v, "params.tags")?,
            b"redirects" => {
                p.redirects_given = true;
                p.spec.max_redirects = match v.number() {
                    Some(n) => n.max(0.0) as u32,
                    None => {
                        return Err(format!(
                            "params.redirects: expected a number, got {}",
                            v.type_name()
                        ))
                    }
                }
            }
            b"cookies" => p.spec.cookies = param_cookies(v)?,
            b"responseType" => p.response_type = Some(param_response_type(v)?),
            b"responseCallback" => p.expected = Some(Expected::read(v)?),
            _ => {}
        }
        Ok(())
    })
}

/// params.cookies: `{name = "v"}` or `{name = {value = "v", replace = true}}`.
fn param_cookies(t: Slot) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    t.pairs(|k, v| {
        let name = k.text().unwrap_or_default();
        let value = if v.is_table() {
            let mut found = String::new();
            v.pairs(|fk, fv| {
                if fk.bytes() == Some(b"value") {
                    found = fv.text().unwrap_or_default();
                }
                Ok(())
            })?;
            found
        } else {
            v.text().ok_or_else(|| {
                format!(
                    "params.cookies.{name}: expected a string, got {}",
                    v.type_name()
                )
            })?
        };
        out.push((name, value));
        Ok(())
    })?;
    Ok(out)
}

thread_local! {
    /// The last `params.timeout` text and its value: scripts pass the same one with every
    /// request, and parsing it was ~700 instructions of a journey request.
    static LAST_TIMEOUT: std::cell::RefCell<Option<(Vec<u8>, Duration)>> =
        const { std::cell::RefCell::new(None) };
}

fn param_timeout(v: Slot) -> Result<Duration, String> {
    if let Some(s) = v.bytes() {
        let last = LAST_TIMEOUT.with_borrow(|l| l.as_ref().filter(|(t, _)| t == s).map(|l| l.1));
        if let Some(d) = last {
            return Ok(d);
        }
        let d = duration::parse(&String::from_utf8_lossy(s))
            .map_err(|e| format!("params.timeout: {e}"))?;
        LAST_TIMEOUT.with_borrow_mut(|last| *last = Some((s.to_vec(), d)));
        return Ok(d);
    }
    match v.number() {
        Some(ms) => Ok(Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
        None => Err(format!(
            "params.timeout: expected a duration, got {}",
            v.type_name()
        )),
    }
}

fn param_response_type(v: Slot) -> Result<ResponseType, String> {
    match v.bytes() {
        Some(b"text") => Ok(ResponseType::Text),
        Some(b"binary") => Ok(ResponseType::Binary),
        Some(b"none") => Ok(ResponseType::None),
        Some(other) => Err(format!(
            "params.responseType: expected \"text\", \"binary\" or \"none\", got {:?}",
            String::from_utf8_lossy(other)
        )),
        None => Err(format!(
            "params.responseType: expected a string, got {}",
            v.type_name()
        )),
    }
}

fn form_encode(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};

    fn pair(name: &str, value: &str) -> Result<Header, String> {
        Ok((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        ))
    }

    #[test]
    fn a_known_header_is_reused_and_other_bytes_under_its_hash_are_made_anew() {
        let first = KnownHeaders::get_keyed(7, b"x-a", b"one", || pair("x-a", "one")).unwrap();
        assert_eq!(first.1, "one");
        // Known: not made again.
        let again = KnownHeaders::get_keyed(7, b"x-a", b"one", || Err("made again".into()));
        assert_eq!(again.unwrap().1, "one");
        // The same hash for other bytes (a collision): validated and made, never the old pair.
        let other = KnownHeaders::get_keyed(7, b"x-a", b"two", || pair("x-a", "two")).unwrap();
        assert_eq!(other.1, "two");
        let split = KnownHeaders::get_keyed(7, b"x-at", b"wo", || pair("x-at", "wo")).unwrap();
        assert_eq!(
            (split.0.as_str(), split.1.to_str().unwrap()),
            ("x-at", "wo")
        );
    }
}
