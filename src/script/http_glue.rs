//! `k6/http` glue: Lua arguments -> `http::RequestSpec`, the request, k6's built-in HTTP
//! metrics per hop, and the response back as a Lua table.

use super::context::{VuState, WorkerCtx};
use super::lua_err;
use super::stack::Slot;
use crate::http::{Client, ConnectionPolicy, RequestSpec, Response, ResponseType};
use crate::metrics::TagSetId;
use crate::options::duration;
use hyper::Method;
use mlua::{Lua, Table, Value};
use std::rc::Rc;
use std::time::Duration;

/// A request ready to send plus what the metrics need from the script's params.
pub struct Prepared {
    pub spec: RequestSpec,
    pub user_tags: Vec<(String, String)>,
    /// params.responseType; None leaves the run's default (discardResponseBodies).
    pub response_type: Option<ResponseType>,
    /// params.responseCallback; None leaves the default (`http.setResponseCallback`).
    pub expected: Option<Expected>,
}

/// Which statuses count as expected (k6's response callback): they set the
/// `expected_response` tag and `http_req_failed`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// `http.expectedStatuses(...)`: inclusive ranges.
    Statuses(Vec<(u16, u16)>),
    /// No callback (`setResponseCallback(null)`, `responseCallback = false`): no
    /// `expected_response` tag and no `http_req_failed` sample, as in k6.
    Off,
}

impl Expected {
    /// k6's default: `http.expectedStatuses({min: 200, max: 399})`.
    pub fn default_statuses() -> Expected {
        Expected::Statuses(vec![(200, 399)])
    }

    /// Reads `http.expectedStatuses(...)`'s object (a flat list lo1, hi1, lo2, hi2, ...) or
    /// `false`/`json.null` for none.
    pub fn read(v: Slot) -> Result<Expected, String> {
        if v.kind() == mlua::ffi::LUA_TBOOLEAN && !v.boolean() || v.light_userdata().is_some() {
            return Ok(Expected::Off);
        }
        if !v.is_table() {
            return Err(format!(
                "responseCallback: expected http.expectedStatuses(...), got {}",
                v.type_name()
            ));
        }
        let mut bounds = Vec::new();
        v.pairs(|k, n| {
            if let (Some(i), Some(n)) = (k.integer(), n.integer()) {
                bounds.push((i, n.clamp(0, 999) as u16));
            }
            Ok(())
        })?;
        bounds.sort_unstable();
        Ok(Expected::Statuses(
            bounds.chunks_exact(2).map(|p| (p[0].1, p[1].1)).collect(),
        ))
    }

    /// Whether a response is expected; None when no callback is set.
    pub fn judge(&self, res: &Response) -> Option<bool> {
        match self {
            Expected::Off => None,
            Expected::Statuses(ranges) => Some(
                res.error.is_none()
                    && ranges
                        .iter()
                        .any(|&(lo, hi)| (lo..=hi).contains(&res.status)),
            ),
        }
    }
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

/// params.headers as validated HTTP headers, straight from the Lua strings' bytes.
fn header_pairs(
    t: Slot,
) -> Result<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>, String> {
    use hyper::header::{HeaderName, HeaderValue};
    let mut out = Vec::new();
    t.pairs(|k, v| {
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
        out.push((name, value));
        Ok(())
    })?;
    Ok(out)
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

fn param_timeout(v: Slot) -> Result<Duration, String> {
    if let Some(s) = v.bytes() {
        return duration::parse(&String::from_utf8_lossy(s))
            .map_err(|e| format!("params.timeout: {e}"));
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

/// The pool this VU sends through, per the connection policy.
pub fn client_for<'a>(ctx: &'a WorkerCtx, vu: &VuState) -> std::borrow::Cow<'a, Client> {
    let policy = ctx.cfg.policy;
    match policy {
        ConnectionPolicy::PerVu | ConnectionPolicy::PerIteration => std::borrow::Cow::Owned(
            vu.client
                .borrow_mut()
                .get_or_insert_with(|| {
                    Client::new(policy, &ctx.cfg.user_agent, None, ctx.cfg.net.clone())
                        .unwrap_or_else(|_| ctx.client.clone())
                })
                .clone(),
        ),
        _ => std::borrow::Cow::Borrowed(&ctx.client),
    }
}

/// Records k6's built-in HTTP metrics for one hop.
pub fn record(
    ctx: &WorkerCtx,
    vu: &VuState,
    res: &Response,
    user_tags: &[(String, String)],
    callback: Option<&Expected>,
) {
    let b = &ctx.cfg.builtins;
    let expected = match callback {
        Some(e) => e.judge(res),
        None => ctx.response_callback.borrow().judge(res),
    };
    let tags = http_tags(ctx, vu, res, expected, user_tags);
    let mut buf = ctx.buffer.borrow_mut();
    let t = &res.timings;
    buf.add(b.http_reqs, tags, 1.0);
    buf.add(b.http_req_duration, tags, t.duration);
    buf.add(b.http_req_blocked, tags, t.blocked);
    buf.add(b.http_req_connecting, tags, t.connecting);
    buf.add(b.http_req_tls_handshaking, tags, t.tls_handshaking);
    buf.add(b.http_req_looking_up, tags, t.looking_up);
    buf.add(b.http_req_sending, tags, t.sending);
    buf.add(b.http_req_waiting, tags, t.waiting);
    buf.add(b.http_req_receiving, tags, t.receiving);
    if let Some(expected) = expected {
        buf.add(b.http_req_failed, tags, if expected { 0.0 } else { 1.0 });
    }
    buf.add(b.data_sent, tags, res.bytes_sent as f64);
    buf.add(b.data_received, tags, res.bytes_received as f64);
}

/// The tag set of an HTTP sample, from a worker-local cache keyed by a hash of what varies
/// (base tags, method, status, url, proto, error code, user tags): strings are built only
/// the first time a combination is seen.
fn http_tags(
    ctx: &WorkerCtx,
    vu: &VuState,
    res: &Response,
    expected: Option<bool>,
    user_tags: &[(String, String)],
) -> TagSetId {
    let base = super::tags::custom_tags(ctx, Some(vu), None).expect("base tags need no Lua");
    let code = res.error_code();
    let mut h = KeyHasher::default();
    h.add(&base.0.to_le_bytes());
    h.add(res.method.as_str().as_bytes());
    h.add(&res.status.to_le_bytes());
    h.add(res.url.as_bytes());
    h.add(res.proto.as_bytes());
    h.add(&code.to_le_bytes());
    h.add(&[expected.map_or(2, u8::from)]);
    for (k, v) in user_tags {
        h.add(k.as_bytes());
        h.add(v.as_bytes());
    }
    let key = h.finish();
    if let Some(&id) = ctx.http_tags.borrow().get(&key) {
        return id;
    }
    let mut pairs = super::api::base_pairs(Some(vu));
    pairs.push(("method".into(), res.method.to_string()));
    pairs.push(("status".into(), res.status.to_string()));
    pairs.push(("url".into(), res.url.clone()));
    pairs.push(("name".into(), res.url.clone()));
    if let Some(expected) = expected {
        pairs.push(("expected_response".into(), expected.to_string()));
    }
    if !res.proto.is_empty() {
        pairs.push(("proto".into(), res.proto.to_string()));
    }
    if code != 0 {
        pairs.push(("error_code".into(), code.to_string()));
    }
    // A `name` tag also replaces `url` (k6's way to group dynamic URLs).
    if let Some((_, name)) = user_tags.iter().find(|(k, _)| k == "name") {
        pairs.push(("url".into(), name.clone()));
    }
    pairs.extend(user_tags.iter().cloned());
    let id = ctx.buffer.borrow_mut().tags(pairs);
    let mut cache = ctx.http_tags.borrow_mut();
    if cache.len() >= 65_536 {
        cache.clear(); // unbounded URL cardinality must not grow memory without end
    }
    cache.insert(key, id);
    id
}

/// A cache key for a tag set derived from `base` plus some byte strings.
pub fn tag_key(base: TagSetId, parts: &[&[u8]]) -> u64 {
    let mut h = KeyHasher::default();
    h.add(b"check");
    h.add(&base.0.to_le_bytes());
    for p in parts {
        h.add(p);
    }
    h.finish()
}

/// Hashes byte strings with a separator, so ("ab","c") and ("a","bc") differ.
#[derive(Default)]
struct KeyHasher(crate::fasthash::Fnv);

impl KeyHasher {
    fn add(&mut self, bytes: &[u8]) {
        use std::hash::Hasher;
        self.0.write(bytes);
        self.0.write(&[0xff]);
    }

    fn finish(&self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}

/// The parts of a response that scripts rarely read, packed into one Lua string and turned
/// into Lua tables only on first access (the prelude's `Response.__index` asks
/// `E.res_extra`). A string costs one copy; the userdata it replaced cost an mlua
/// allocation, a metatable lookup and a finaliser per response (~1,500 instructions).
/// Layout: status (u16), then proto, tls_version, method and url (u32 length + bytes),
/// then the flat headers (`Headers::as_flat`).
pub fn pack_extra(res: &Response) -> Vec<u8> {
    let flat = res.headers.as_flat();
    let parts = [
        res.proto.as_bytes(),
        res.tls_version.as_bytes(),
        res.method.as_str().as_bytes(),
        res.url.as_bytes(),
    ];
    let size = 2 + parts.iter().map(|p| 4 + p.len()).sum::<usize>() + flat.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&res.status.to_le_bytes());
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(flat);
    out
}

/// `pack_extra`'s fields, borrowed from the string.
struct Extra<'a> {
    status: u16,
    proto: &'a str,
    tls_version: &'a str,
    method: &'a str,
    url: &'a str,
    headers: &'a [u8],
}

fn unpack_extra(b: &[u8]) -> Option<Extra<'_>> {
    let status = u16::from_le_bytes(b.get(..2)?.try_into().ok()?);
    let mut rest = &b[2..];
    let mut next = || -> Option<&str> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
        rest = &rest[4 + len..];
        Some(text)
    };
    let (proto, tls_version, method, url) = (next()?, next()?, next()?, next()?);
    Some(Extra {
        status,
        proto,
        tls_version,
        method,
        url,
        headers: rest,
    })
}

/// A response as the values the prelude's `build_response` takes: status, body, error,
/// error_code, the eight timings, and the lazy rest. (`intent::Reply` pushes the same
/// values without building them first; this form is for http.batch's lists.)
pub fn to_lua_parts(lua: &Lua, res: Response) -> mlua::Result<Vec<Value>> {
    let t = res.timings;
    let body = match &res.body {
        Some(b) => Value::String(lua.create_string(b)?),
        None => Value::Nil,
    };
    let error = match &res.error {
        Some(e) => Value::String(lua.create_string(&e.message)?),
        None => Value::Nil,
    };
    let (status, code) = (res.status, res.error_code());
    Ok(vec![
        Value::Integer(status as i64),
        body,
        error,
        Value::Integer(code as i64),
        Value::Number(t.duration),
        Value::Number(t.waiting),
        Value::Number(t.receiving),
        Value::Number(t.blocked),
        Value::Number(t.sending),
        Value::Number(t.connecting),
        Value::Number(t.tls_handshaking),
        Value::Number(t.looking_up),
        Value::String(lua.create_string(pack_extra(&res))?),
    ])
}

/// Builds `headers`, `cookies`, `request`, `url`, `proto` or `status_text` of a response on
/// first access.
pub fn extra_field(lua: &Lua, res: &Table, key: &str) -> mlua::Result<Value> {
    let Ok(packed) = res.raw_get::<mlua::LuaString>("_extra") else {
        return Ok(Value::Nil);
    };
    let packed = packed.as_bytes();
    let Some(extra) = unpack_extra(&packed) else {
        return Ok(Value::Nil);
    };
    let headers_of = || crate::http::Headers::iter_flat(extra.headers);
    let v = match key {
        "headers" => {
            let headers = lua.create_table_with_capacity(0, headers_of().count())?;
            for (k, v) in headers_of() {
                let k = crate::http::canonical_header(k);
                let v = String::from_utf8_lossy(v);
                // Repeated headers are joined as Go's Header.Get would show them.
                let joined = match headers.raw_get::<Option<String>>(k.as_str())? {
                    Some(prev) => format!("{prev}, {v}"),
                    None => v.into_owned(),
                };
                headers.raw_set(k.as_str(), joined)?;
            }
            headers
        }
        "cookies" => {
            // From this response's Set-Cookie headers, read as the jar read them.
            let (host, path) = url::Url::parse(extra.url)
                .map(|u| (u.host_str().unwrap_or("").to_string(), u.path().to_string()))
                .unwrap_or_default();
            let cookies = lua.create_table()?;
            for (_, v) in headers_of().filter(|(k, _)| *k == "set-cookie") {
                let Some(c) =
                    crate::http::parse_set_cookie(&String::from_utf8_lossy(v), &host, &path)
                else {
                    continue;
                };
                let list: Table = match cookies.raw_get::<Option<Table>>(c.name.as_str())? {
                    Some(l) => l,
                    None => {
                        let l = lua.create_table()?;
                        cookies.raw_set(c.name.as_str(), &l)?;
                        l
                    }
                };
                let ct = lua.create_table()?;
                ct.raw_set("name", c.name.as_str())?;
                ct.raw_set("value", c.value.as_str())?;
                ct.raw_set("domain", c.domain.as_str())?;
                ct.raw_set("path", c.path.as_str())?;
                ct.raw_set("http_only", c.http_only)?;
                ct.raw_set("secure", c.secure)?;
                list.raw_push(ct)?;
            }
            cookies
        }
        "request" => {
            let req = lua.create_table()?;
            req.raw_set("method", extra.method)?;
            req.raw_set("url", extra.url)?;
            req
        }
        "url" | "proto" | "status_text" | "tls_version" => {
            let status_text;
            let text = match key {
                "url" => extra.url,
                "proto" => extra.proto,
                "tls_version" => extra.tls_version,
                _ => {
                    status_text = match hyper::StatusCode::from_u16(extra.status) {
                        Ok(s) if extra.status > 0 => {
                            format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                        }
                        _ => String::new(),
                    };
                    status_text.as_str()
                }
            };
            let v = Value::String(lua.create_string(text)?);
            res.raw_set(key, &v)?;
            return Ok(v);
        }
        _ => return Ok(Value::Nil),
    };
    res.raw_set(key, &v)?;
    Ok(Value::Table(v))
}

/// `http.cookieJar()` primitives on the running VU's jar, lazy response fields and the
/// default response callback.
pub fn register_jar(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    e.set(
        "set_response_callback",
        lua.create_function(move |_, (on, bounds): (bool, mlua::Variadic<i64>)| {
            *c.response_callback.borrow_mut() = if on {
                let b: Vec<u16> = bounds.iter().map(|n| (*n).clamp(0, 999) as u16).collect();
                Expected::Statuses(b.chunks_exact(2).map(|p| (p[0], p[1])).collect())
            } else {
                Expected::Off
            };
            Ok(())
        })?,
    )?;
    e.set(
        "res_extra",
        lua.create_function(|lua, (t, k): (Table, String)| extra_field(lua, &t, &k))?,
    )?;
    fn host_path(url: &str) -> Option<(String, String, bool)> {
        let u = url::Url::parse(url).ok()?;
        Some((
            u.host_str()?.to_string(),
            u.path().to_string(),
            u.scheme() == "https",
        ))
    }
    let c = ctx.clone();
    e.set(
        "jar_cookies",
        lua.create_function(move |lua, url: String| {
            let vu = c.vu().ok_or_else(|| {
                lua_err(lua, "the cookie jar is only available in VU code".into())
            })?;
            let (host, path, secure) =
                host_path(&url).ok_or_else(|| lua_err(lua, format!("invalid URL {url:?}")))?;
            let out = lua.create_table()?;
            for (k, v) in vu.jar.borrow().matching(&host, &path, secure) {
                let list = lua.create_table()?;
                list.push(v)?;
                out.set(k, list)?;
            }
            Ok(out)
        })?,
    )?;
    let c = ctx.clone();
    e.set(
        "jar_set",
        lua.create_function(move |lua, (url, name, value): (String, String, String)| {
            let vu = c.vu().ok_or_else(|| {
                lua_err(lua, "the cookie jar is only available in VU code".into())
            })?;
            let (host, _, _) =
                host_path(&url).ok_or_else(|| lua_err(lua, format!("invalid URL {url:?}")))?;
            vu.jar.borrow_mut().set(&host, &name, &value);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    e.set(
        "jar_clear",
        lua.create_function(move |_, _url: Option<String>| {
            if let Some(vu) = c.vu() {
                vu.jar.borrow_mut().clear();
            }
            Ok(())
        })?,
    )?;
    Ok(())
}
