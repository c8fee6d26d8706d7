//! A response on its way to Lua: the 6 values the prelude's `build_response` takes, and
//! the rarely read fields packed in one string and unpacked on first access.

use crate::http::Response;
use mlua::{Lua, Table, Value};

/// The parts of a response that scripts rarely read, packed into one Lua string and turned
/// into Lua tables only on first access (the prelude's `Response.__index` asks
/// `native.res_extra`). A string costs one copy; the userdata it replaced cost an mlua
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
/// error_code, the timings (a userdata), and the lazy rest. (`intent::Reply` pushes the same
/// values without building them first; this form is for http.batch's lists.)
pub fn to_lua_parts(lua: &Lua, res: Response) -> mlua::Result<Vec<Value>> {
    let body = match &res.body {
        Some(b) => Value::String(lua.create_string(b)?),
        None => Value::Nil,
    };
    let error = match &res.error {
        Some(e) => Value::String(lua.create_string(&e.message)?),
        None => Value::Nil,
    };
    // SAFETY: a protected call with room on the stack; push raises only a memory error.
    let timings: Value =
        unsafe { lua.exec_raw((), |state| super::timings::push(state, &res.timings))? };
    let (status, code) = (res.status, res.error_code());
    Ok(vec![
        Value::Integer(status as i64),
        body,
        error,
        Value::Integer(code as i64),
        timings,
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
