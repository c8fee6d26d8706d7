//! `engine`: the engine's own module (not in k6). `engine.metric(name, tags)` reads the run's
//! totals so far, for integrity checks in setup(), teardown() and handleSummary().

use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use crate::script::tag_cache;
use mlua::{Lua, LuaSerdeExt, Table, Value};
use std::rc::Rc;

/// `metric_value`.
pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    // An engine extension (not in k6): run totals so far, for integrity checks in teardown.
    native.set(
        "metric_value",
        lua.create_function(move |lua, (name, tags): (String, Option<Table>)| {
            let Some(req) = &c.cfg.snapshots else {
                return Err(lua_err(
                    lua,
                    "engine.metric() is only available in setup(), teardown() and handleSummary()"
                        .into(),
                ));
            };
            let Some(snap) = req.snapshot() else {
                return Ok(Value::Nil);
            };
            let Some(id) = snap.id(&name) else {
                return Err(lua_err(
                    lua,
                    format!("engine.metric: unknown metric {name:?}"),
                ));
            };
            let filter = match tags {
                Some(t) => tag_cache::table_pairs(&t)?,
                None => Vec::new(),
            };
            let def = snap.def(id);
            let sink = snap
                .matching(id, &filter)
                .unwrap_or_else(|| crate::metrics::Sink::new(def.kind));
            let stats: Vec<String> = [
                "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count",
            ]
            .map(String::from)
            .to_vec();
            let v = crate::report::export::values(
                def.kind,
                &sink,
                &stats,
                snap.elapsed.as_secs_f64().max(1e-9),
            );
            lua.to_value(&v)
        })?,
    )?;
    Ok(())
}
