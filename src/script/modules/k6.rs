//! `k6`: check, group and randomSeed (sleep and fail are pure Lua in the prelude).

use super::with_stream;
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::tag_cache;
use mlua::{Lua, Table, Value};
use std::rc::Rc;

pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    native.set(
        "record_check",
        lua.create_function(move |lua, (name, ok, tags): (Value, bool, Option<Table>)| {
            let name = match name {
                Value::String(s) => s,
                other => lua.create_string(tag_cache::plain(&other))?,
            };
            let vu = c.vu();
            let id = tag_cache::check(&c, vu.as_deref(), &name, tags)?;
            c.buffer
                .borrow_mut()
                .add(c.cfg.builtins.checks, id, if ok { 1.0 } else { 0.0 });
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "group_enter",
        lua.create_function(move |lua, name: String| {
            let vu = c
                .vu()
                .ok_or_else(|| lua_err(lua, "group() can only be called in VU code".into()))?;
            if name.contains("::") {
                return Err(lua_err(
                    lua,
                    format!("group name {name:?} must not contain '::'"),
                ));
            }
            let path = format!("{}::{}", vu.group_path(), name);
            vu.push_group(path);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "group_exit",
        lua.create_function(move |_, ()| {
            let Some(vu) = c.vu() else { return Ok(()) };
            // group_duration carries the group it measured, so take the tags before leaving it.
            let pairs = tag_cache::base_pairs(Some(&vu));
            let Some((_, started)) = vu.pop_group() else {
                return Ok(());
            };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let id = tag_cache::exact(&c, pairs);
            c.buffer
                .borrow_mut()
                .add(c.cfg.builtins.group_duration, id, ms);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "random_seed",
        lua.create_function(move |_, seed: Option<f64>| {
            let s = seed.map(|s| s as u64).unwrap_or_else(rand::random);
            with_stream(&c, |stream| stream.reseed(s));
            Ok(())
        })?,
    )?;
    Ok(())
}
