//! `k6/metrics`: Counter, Gauge, Rate and Trend are registered in init code and added to by
//! id; the tags of a sample come from the tag cache.

use crate::metrics::{MetricId, MetricType, ValueType};
use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::tag_cache;
use mlua::{Lua, Table, Value};
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
    native.set(
        "metric_add",
        lua.create_function(move |lua, (id, value, tags): (u32, Value, Option<Table>)| {
            let v = match value {
                Value::Boolean(b) => b as u8 as f64,
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                Value::Nil => return Err(lua_err(lua, "metric add: value is nil".into())),
                other => match other
                    .as_string()
                    .and_then(|s| s.to_str().ok()?.trim().parse::<f64>().ok())
                {
                    Some(n) => n,
                    None => {
                        return Err(lua_err(
                            lua,
                            format!(
                                "metric add: expected a number or boolean, got {}",
                                other.type_name()
                            ),
                        ))
                    }
                },
            };
            let vu = c.vu();
            let tag_id = tag_cache::custom(&c, vu.as_deref(), tags)?;
            c.buffer.borrow_mut().add(MetricId(id), tag_id, v);
            Ok(())
        })?,
    )?;
    Ok(())
}
