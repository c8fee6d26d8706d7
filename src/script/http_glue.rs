//! `k6/http` glue: Lua arguments -> `http::RequestSpec`, the request, k6's built-in HTTP
//! metrics per hop, and the response back as a Lua table.

use super::context::{VuState, WorkerCtx};
use super::lua_err;
use super::tags::{plain, table_pairs};
use crate::http::{Client, ConnectionPolicy, RequestSpec, Response, ResponseType};
use crate::options::duration;
use mlua::{Lua, Table, Value};
use reqwest::Method;
use std::rc::Rc;
use std::time::Duration;

/// A request ready to send plus what the metrics need from the script's params.
pub struct Prepared {
    pub spec: RequestSpec,
    pub user_tags: Vec<(String, String)>,
}

/// Converts `(method, url, body, params)` as yielded by the prelude.
pub fn prepare(
    ctx: &WorkerCtx,
    method: &str,
    url: Value,
    body: Value,
    params: Value,
) -> Result<Prepared, String> {
    let url = match url {
        Value::String(s) => s.to_string_lossy(),
        other => {
            return Err(format!(
                "http request: url must be a string, got {}",
                other.type_name()
            ))
        }
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("http.request: invalid method {method:?}"))?;
    let mut spec = RequestSpec {
        method,
        url,
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_secs(60),
        max_redirects: 10,
        response_type: if ctx.cfg.discard_response_bodies {
            ResponseType::None
        } else {
            ResponseType::Text
        },
        cookies: Vec::new(),
    };
    let mut user_tags = Vec::new();
    if let Value::Table(p) = params {
        read_params(&p, &mut spec, &mut user_tags)?;
    } else if !params.is_nil() {
        return Err(format!(
            "http request: params must be a table, got {}",
            params.type_name()
        ));
    }
    spec.body = match body {
        Value::Nil => None,
        Value::String(s) => Some(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => {
            // k6 form-encodes an object body.
            if !spec
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                spec.headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            let pairs = table_pairs(&t).map_err(|e| e.to_string())?;
            Some(bytes::Bytes::from(form_encode(&pairs)))
        }
        other => Some(bytes::Bytes::from(plain(&other))),
    };
    Ok(Prepared { spec, user_tags })
}

fn read_params(
    p: &Table,
    spec: &mut RequestSpec,
    user_tags: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let get = |k: &str| p.get::<Value>(k).map_err(|e| e.to_string());
    if let Value::Table(h) = get("headers")? {
        spec.headers = table_pairs(&h).map_err(|e| e.to_string())?;
    }
    match get("timeout")? {
        Value::Nil => {}
        Value::String(s) => {
            spec.timeout =
                duration::parse(&s.to_string_lossy()).map_err(|e| format!("params.timeout: {e}"))?
        }
        Value::Integer(ms) => spec.timeout = Duration::from_millis(ms.max(0) as u64),
        Value::Number(ms) => spec.timeout = Duration::from_secs_f64(ms.max(0.0) / 1000.0),
        other => {
            return Err(format!(
                "params.timeout: expected a duration, got {}",
                other.type_name()
            ))
        }
    }
    if let Value::Table(t) = get("tags")? {
        *user_tags = table_pairs(&t).map_err(|e| e.to_string())?;
    }
    match get("redirects")? {
        Value::Nil => {}
        Value::Integer(n) => spec.max_redirects = n.max(0) as u32,
        Value::Number(n) => spec.max_redirects = n.max(0.0) as u32,
        other => {
            return Err(format!(
                "params.redirects: expected a number, got {}",
                other.type_name()
            ))
        }
    }
    if let Value::Table(c) = get("cookies")? {
        for pair in c.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            let value = match &v {
                Value::Table(t) => t
                    .get::<Value>("value")
                    .map(|v| plain(&v))
                    .map_err(|e| e.to_string())?,
                other => plain(other),
            };
            spec.cookies.push((plain(&k), value));
        }
    }
    match get("responseType")? {
        Value::Nil => {}
        Value::String(s) => {
            spec.response_type = match s.to_string_lossy().as_str() {
                "text" => ResponseType::Text,
                "binary" => ResponseType::Binary,
                "none" => ResponseType::None,
                other => {
                    return Err(format!(
                    "params.responseType: expected \"text\", \"binary\" or \"none\", got {other:?}"
                ))
                }
            }
        }
        other => {
            return Err(format!(
                "params.responseType: expected a string, got {}",
                other.type_name()
            ))
        }
    }
    Ok(())
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
pub fn client_for(ctx: &WorkerCtx, vu: &VuState) -> Client {
    match ctx.cfg.policy {
        ConnectionPolicy::PerVu => vu
            .client
            .get_or_init(|| {
                Client::new(ConnectionPolicy::PerVu, &ctx.cfg.user_agent)
                    .unwrap_or_else(|_| ctx.client.clone())
            })
            .clone(),
        _ => ctx.client.clone(),
    }
}

/// Records k6's built-in HTTP metrics for one hop.
pub fn record(ctx: &WorkerCtx, vu: &VuState, res: &Response, user_tags: &[(String, String)]) {
    let b = &ctx.cfg.builtins;
    let expected = res.error.is_none() && (200..400).contains(&res.status);
    let mut pairs = super::api::base_pairs(Some(vu));
    pairs.push(("method".into(), res.method.to_string()));
    pairs.push(("status".into(), res.status.to_string()));
    pairs.push(("url".into(), res.url.clone()));
    pairs.push(("name".into(), res.url.clone()));
    pairs.push(("expected_response".into(), expected.to_string()));
    if !res.proto.is_empty() {
        pairs.push(("proto".into(), res.proto.to_string()));
    }
    let code = res.error_code();
    if code != 0 {
        pairs.push(("error_code".into(), code.to_string()));
    }
    // A `name` tag also replaces `url` (k6's way to group dynamic URLs).
    if let Some((_, name)) = user_tags.iter().find(|(k, _)| k == "name") {
        pairs.push(("url".into(), name.clone()));
    }
    pairs.extend(user_tags.iter().cloned());
    let mut buf = ctx.buffer.borrow_mut();
    let tags = buf.tags(pairs);
    let t = &res.timings;
    buf.add(b.http_reqs, tags, 1.0);
    buf.add(b.http_req_duration, tags, t.duration);
    buf.add(b.http_req_waiting, tags, t.waiting);
    buf.add(b.http_req_receiving, tags, t.receiving);
    buf.add(b.http_req_failed, tags, if expected { 0.0 } else { 1.0 });
    buf.add(b.data_sent, tags, res.bytes_sent as f64);
    buf.add(b.data_received, tags, res.bytes_received as f64);
}

/// The script's view of a response (the prelude adds the `json()` method).
pub fn to_lua(lua: &Lua, res: &Response) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 12)?;
    t.set("status", res.status)?;
    t.set("status_text", res.status_text.as_str())?;
    t.set("url", res.url.as_str())?;
    t.set("proto", res.proto)?;
    match &res.body {
        Some(b) => t.set("body", lua.create_string(b)?)?,
        None => t.set("body", Value::Nil)?,
    }
    let headers = lua.create_table_with_capacity(0, res.headers.len())?;
    for (k, v) in &res.headers {
        // Repeated headers are joined as Go's Header.Get would show them.
        let joined = match headers.get::<Option<String>>(k.as_str())? {
            Some(prev) => format!("{prev}, {v}"),
            None => v.clone(),
        };
        headers.set(k.as_str(), joined)?;
    }
    t.set("headers", headers)?;
    let cookies = lua.create_table()?;
    for c in &res.set_cookies {
        let list: Table = match cookies.get::<Option<Table>>(c.name.as_str())? {
            Some(l) => l,
            None => {
                let l = lua.create_table()?;
                cookies.set(c.name.as_str(), &l)?;
                l
            }
        };
        let ct = lua.create_table()?;
        ct.set("name", c.name.as_str())?;
        ct.set("value", c.value.as_str())?;
        ct.set("domain", c.domain.as_str())?;
        ct.set("path", c.path.as_str())?;
        ct.set("http_only", c.http_only)?;
        ct.set("secure", c.secure)?;
        list.push(ct)?;
    }
    t.set("cookies", cookies)?;
    t.set(
        "error",
        res.error.as_ref().map_or("", |e| e.message.as_str()),
    )?;
    t.set("error_code", res.error_code())?;
    let tm = lua.create_table_with_capacity(0, 7)?;
    let x = &res.timings;
    tm.set("duration", x.duration)?;
    tm.set("waiting", x.waiting)?;
    tm.set("receiving", x.receiving)?;
    tm.set("sending", x.sending)?;
    tm.set("blocked", x.blocked)?;
    tm.set("connecting", x.connecting)?;
    tm.set("tls_handshaking", x.tls_handshaking)?;
    t.set("timings", tm)?;
    let req = lua.create_table()?;
    req.set("method", res.method.as_str())?;
    req.set("url", res.url.as_str())?;
    t.set("request", req)?;
    Ok(t)
}

/// `http.cookieJar()` primitives on the running VU's jar.
pub fn register_jar(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    fn host_path(url: &str) -> Option<(String, String, bool)> {
        let u = reqwest::Url::parse(url).ok()?;
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
