//! What k6 puts in every script's scope: `console.*`, `open()` (init code only), and the
//! VU's own `math.random` stream; plus the wall clock the prelude's `Date.now` reads.

use super::with_rng;
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use mlua::{Lua, Table, Value};
use rand::Rng;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// `log`, `now_ms`, `open` and `random`.
pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    native.set(
        "log",
        lua.create_function(move |_, (level, msg): (String, String)| {
            let secs = c.cfg.started.elapsed().as_secs();
            let tag = match level.as_str() {
                "warn" => "WARN",
                "error" => "ERRO",
                "debug" => "DEBU",
                _ => "INFO",
            };
            eprintln!("{tag}[{secs:04}] {msg}  source=console");
            Ok(())
        })?,
    )?;
    native.set(
        "now_ms",
        lua.create_function(|_, ()| {
            Ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64))
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "open",
        lua.create_function(move |lua, (path, _mode): (String, Option<String>)| {
            if c.current.borrow().is_some() {
                return Err(lua_err(
                    lua,
                    "open() can only be called in init code".into(),
                ));
            }
            let dir = c
                .cfg
                .script_path
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_default();
            let full = if std::path::Path::new(&path).is_absolute() {
                path.clone().into()
            } else {
                dir.join(&path)
            };
            let bytes = std::fs::read(&full)
                .map_err(|e| lua_err(lua, format!("open({path:?}): {}: {e}", full.display())))?;
            // Text and binary ("b") both come back as a Lua string of the file's bytes.
            lua.create_string(bytes)
        })?,
    )?;
    let c = ctx.clone();
    // Lua 5.4's math.random semantics on the running VU's own stream.
    native.set(
        "random",
        lua.create_function(move |lua, (m, n): (Option<i64>, Option<i64>)| {
            with_rng(&c, |rng| match (m, n) {
                (None, _) => Ok(Value::Number(rng.random::<f64>())),
                (Some(hi), None) if hi >= 1 => Ok(Value::Integer(rng.random_range(1..=hi))),
                (Some(lo), Some(hi)) if lo <= hi => Ok(Value::Integer(rng.random_range(lo..=hi))),
                _ => Err(lua_err(
                    lua,
                    "bad argument to 'random' (interval is empty)".into(),
                )),
            })
        })?,
    )?;
    Ok(())
}
