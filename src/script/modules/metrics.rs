//! `k6/metrics`: Counter, Gauge, Rate and Trend are registered in init code and added to by
//! id; the tags of a sample come from the tag cache.

use crate::metrics::{MetricId, MetricType, ValueType};
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::raw;
use crate::script::stack::Slot;
use crate::script::tag_cache;
use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;
use std::rc::Rc;

pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    native.set(
        "metric_register",
        lua.create_function(move |lua, (name, kind, is_time): (String, String, bool)| {
            if c.current.borrow().is_some() {
                return Err(lua_err(
                    lua,
                    format!("metric {name:?}: custom metrics must be created in init code"),
                ));
            }
            let kind = match kind.as_str() {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "rate" => MetricType::Rate,
                _ => MetricType::Trend,
            };
            let contains = if is_time && kind == MetricType::Trend {
                ValueType::Time
            } else {
                ValueType::Default
            };
            c.cfg
                .registry
                .register(&name, kind, contains)
                .map(|id| id.0)
                .map_err(|m| lua_err(lua, m))
        })?,
    )?;
    let c = ctx.clone();
    // A metric's `add`: a C closure over the metric's id and object (see `add`).
    native.set(
        "metric_adder",
        lua.create_function(move |lua, (id, m): (u32, Table)| raw::closure(lua, &c, add, (id, m)))?,
    )?;
    Ok(())
}

/// `m.add(value, tags)` and `m:add(value, tags)` (a JS line ported as is, or Lua's method
/// call): upvalue 2 is the metric's id, 3 the metric object. Called twice per beacon by the
/// journey scripts, with tags: a tags table is looked up by a hash of its contents, so a
/// known tag set costs no allocation.
unsafe extern "C-unwind" fn add(state: *mut ffi::lua_State) -> c_int {
    // Only a table can be the metric (a value never is one): most calls compare no further.
    let method_call = ffi::lua_type(state, 1) == ffi::LUA_TTABLE
        && ffi::lua_rawequal(state, 1, ffi::lua_upvalueindex(3)) != 0;
    let first = if method_call { 2 } else { 1 };
    ffi::lua_settop(state, first + 1);
    let id = ffi::lua_tointegerx(state, ffi::lua_upvalueindex(2), std::ptr::null_mut());
    let (value, tags) = (Slot::new(state, first), Slot::new(state, first + 1));
    match record(raw::ctx(state), MetricId(id as u32), value, tags) {
        Ok(()) => 0,
        Err(msg) => raw::raise(state, msg),
    }
}

fn record(ctx: &WorkerCtx, id: MetricId, value: Slot, tags: Slot) -> Result<(), String> {
    let v = match value.kind() {
        ffi::LUA_TBOOLEAN => value.boolean() as u8 as f64,
        ffi::LUA_TNUMBER => value
            .integer()
            .map_or_else(|| value.number().unwrap_or(0.0), |i| i as f64),
        ffi::LUA_TNIL | ffi::LUA_TNONE => return Err("metric add: value is nil".into()),
        _ => match value
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok()?.trim().parse::<f64>().ok())
        {
            Some(n) => n,
            None => {
                return Err(format!(
                    "metric add: expected a number or boolean, got {}",
                    value.type_name()
                ))
            }
        },
    };
    let tags = match tags {
        t if t.is_table() => Some(t),
        t if t.is_nil() => None,
        t => {
            return Err(format!(
                "metric add: tags must be a table, got {}",
                t.type_name()
            ))
        }
    };
    let vu = ctx.vu();
    let tag_id = tag_cache::custom_slot(ctx, vu.as_deref(), tags);
    ctx.buffer.borrow_mut().add(id, tag_id, v);
    Ok(())
}
