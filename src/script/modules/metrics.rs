//! `k6/metrics`: Counter, Gauge, Rate and Trend are registered in init code and added to by
//! id; the tags of a sample come from the tag cache.

use crate::metrics::{MetricId, MetricType, ValueType};
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::stack::StackArgs;
use crate::script::tag_cache;
use mlua::{ffi, Lua, Table};
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
    // Called twice per beacon by the journey scripts, with tags: the arguments are read
    // where they lie on the stack (see StackArgs) and a tags table is looked up by a hash
    // of its contents, so a known tag set costs no allocation.
    native.set(
        "metric_add",
        lua.create_function(move |lua, args: StackArgs| {
            let id = args.at(0).and_then(|s| s.integer()).unwrap_or(-1);
            let Ok(id) = u32::try_from(id) else {
                return Err(lua_err(lua, "metric add: not a metric".into()));
            };
            let v = match args.at(1) {
                None => return Err(lua_err(lua, "metric add: value is nil".into())),
                Some(s) => match s.kind() {
                    ffi::LUA_TBOOLEAN => s.boolean() as u8 as f64,
                    ffi::LUA_TNUMBER => s
                        .integer()
                        .map_or_else(|| s.number().unwrap_or(0.0), |i| i as f64),
                    ffi::LUA_TNIL | ffi::LUA_TNONE => {
                        return Err(lua_err(lua, "metric add: value is nil".into()))
                    }
                    _ => match s
                        .bytes()
                        .and_then(|b| std::str::from_utf8(b).ok()?.trim().parse::<f64>().ok())
                    {
                        Some(n) => n,
                        None => {
                            return Err(lua_err(
                                lua,
                                format!(
                                    "metric add: expected a number or boolean, got {}",
                                    s.type_name()
                                ),
                            ))
                        }
                    },
                },
            };
            let vu = c.vu();
            let tags = match args.at(2) {
                Some(t) if t.is_table() => Some(t),
                Some(t) if !t.is_nil() => {
                    return Err(lua_err(
                        lua,
                        format!("metric add: tags must be a table, got {}", t.type_name()),
                    ))
                }
                _ => None,
            };
            let tag_id = tag_cache::custom_slot(&c, vu.as_deref(), tags);
            c.buffer.borrow_mut().add(MetricId(id), tag_id, v);
            Ok(())
        })?,
    )?;
    Ok(())
}
