//! `http.cookieJar()`: the running VU's jar, read and written from Lua.

use crate::http::Jar;
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use mlua::{Lua, Table};
use std::rc::Rc;

/// `jar_cookies`, `jar_set` and `jar_clear`.
pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    fn host_path(url: &str) -> Option<(String, String, bool)> {
        let u = url::Url::parse(url).ok()?;
        Some((
            u.host_str()?.to_string(),
            u.path().to_string(),
            u.scheme() == "https",
        ))
    }
    let c = ctx.clone();
    native.set(
        "jar_cookies",
        lua.create_function(move |lua, url: String| {
            let vu = c.vu().ok_or_else(|| {
                lua_err(lua, "the cookie jar is only available in VU code".into())
            })?;
            let (host, path, secure) =
                host_path(&url).ok_or_else(|| lua_err(lua, format!("invalid URL {url:?}")))?;
            let out = lua.create_table()?;
            // Reading a jar that was never made does not make it.
            let Some(jar) = vu.existing() else {
                return Ok(out);
            };
            for (k, v) in jar.borrow().matching(&host, &path, secure) {
                let list = lua.create_table()?;
                list.push(v)?;
                out.set(k, list)?;
            }
            Ok(out)
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "jar_set",
        lua.create_function(move |lua, (url, name, value): (String, String, String)| {
            let vu = c.vu().ok_or_else(|| {
                lua_err(lua, "the cookie jar is only available in VU code".into())
            })?;
            let (host, _, _) =
                host_path(&url).ok_or_else(|| lua_err(lua, format!("invalid URL {url:?}")))?;
            vu.jar().borrow_mut().set(&host, &name, &value);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "jar_clear",
        lua.create_function(move |_, _url: Option<String>| {
            if let Some(vu) = c.vu() {
                vu.clear_jar();
            }
            Ok(())
        })?,
    )?;
    Ok(())
}
