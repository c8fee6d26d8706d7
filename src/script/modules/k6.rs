//! `k6`: check, group and randomSeed (sleep is intent.rs's, fail pure Lua in the prelude).

use super::with_stream;
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::raw;
use crate::script::stack::Slot;
use crate::script::tag_cache;
use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;
use std::rc::Rc;

pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    native.set("check", raw::closure(lua, ctx, check, ())?)?;
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

// check's stack: the value (1), the checks (2), the tags (3), whether all passed so far
// (4), the current check's name (5) and predicate (6), then what the predicate gave (7).
const VALUE: c_int = 1;
const CHECKS: c_int = 2;
const TAGS: c_int = 3;
const ALL: c_int = 4;
const NAME: c_int = 5;
const PRED: c_int = 6;
const RESULT: c_int = 7;

/// `check(value, { name = predicate or value, ... }, tags)`: records one `checks` sample per
/// entry, in `next` order, and returns whether all passed. A C function, not a Lua loop over
/// an mlua callback per entry (1,900 instructions less for a one-entry check); a predicate
/// may still yield (an HTTP request in it, the preemption watchdog): it is called with a
/// continuation.
unsafe extern "C-unwind" fn check(state: *mut ffi::lua_State) -> c_int {
    ffi::lua_settop(state, TAGS);
    let bad = match (Slot::new(state, CHECKS), Slot::new(state, TAGS)) {
        (c, _) if !c.is_table() => Some(format!(
            "check: expected a table of checks, got {}",
            c.type_name()
        )),
        (_, t) if !t.is_nil() && !t.is_table() => Some(format!(
            "check: tags must be a table, got {}",
            t.type_name()
        )),
        _ => None,
    };
    if let Some(msg) = bad {
        return raw::raise(state, msg);
    }
    ffi::lua_pushboolean(state, 1);
    ffi::lua_pushnil(state);
    next_check(state)
}

/// Runs the checks after the one at NAME; returns ALL when none is left.
unsafe fn next_check(state: *mut ffi::lua_State) -> c_int {
    // A predicate that adds a key to the checks makes lua_next raise, as `next` does.
    while ffi::lua_next(state, CHECKS) != 0 {
        if ffi::lua_type(state, PRED) == ffi::LUA_TFUNCTION {
            ffi::lua_pushvalue(state, PRED);
            ffi::lua_pushvalue(state, VALUE);
            ffi::lua_callk(state, 1, 1, 0, Some(checked));
        } else {
            ffi::lua_pushvalue(state, PRED);
        }
        record(state);
    }
    ffi::lua_settop(state, ALL);
    1
}

/// Where a predicate that yielded goes on when it returns.
unsafe extern "C-unwind" fn checked(
    state: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    record(state);
    next_check(state)
}

/// Records the check at NAME with the result at RESULT, and leaves NAME on top for lua_next.
unsafe fn record(state: *mut ffi::lua_State) {
    let ok = ffi::lua_toboolean(state, RESULT) != 0;
    if !ok {
        ffi::lua_pushboolean(state, 0);
        ffi::lua_replace(state, ALL);
    }
    let c = raw::ctx(state);
    let tags = Slot::new(state, TAGS);
    let vu = c.vu();
    let id = tag_cache::check(
        c,
        vu.as_deref(),
        Slot::new(state, NAME),
        tags.is_table().then_some(tags),
    );
    drop(vu);
    c.buffer
        .borrow_mut()
        .add(c.cfg.builtins.checks, id, if ok { 1.0 } else { 0.0 });
    ffi::lua_settop(state, NAME);
}
