//! `k6/execution` and `__VU`/`__ITER`: the running VU, its scenario and this instance.

use crate::script::context::WorkerCtx;
use crate::script::errors::lua_err;
use mlua::{Lua, Table, Value};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    // The globals' __index: `__VU` and `__ITER` belong to the VU that is running, so they
    // are looked up, not stored. A Rust function, not a Lua one calling Rust: one call
    // instead of two per read, and one call frame less that a VU's coroutine keeps for life
    // (Lua keeps a coroutine's deepest chain of frames).
    let c = ctx.clone();
    native.set(
        "globals_index",
        lua.create_function(move |_, (_, key): (Value, Value)| {
            let Value::String(key) = key else {
                return Ok(None);
            };
            Ok(match &*key.as_bytes() {
                b"__VU" => Some(c.vu().map_or(0, |v| u64::from(v.id_in_test))),
                b"__ITER" => Some(c.vu().map_or(0, |v| v.iter.get())),
                _ => None,
            })
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "scenario_env",
        lua.create_function(move |_, key: mlua::LuaString| {
            let Some(vu) = c.vu() else { return Ok(None) };
            let sc = vu.scenario();
            let key = key.to_string_lossy();
            Ok(sc.as_ref().and_then(|s| {
                s.env
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            }))
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "scenario_env_all",
        lua.create_function(move |lua, ()| {
            let Some(vu) = c.vu() else { return Ok(None) };
            let sc = vu.scenario();
            let Some(sc) = sc.as_ref() else {
                return Ok(None);
            };
            let t = lua.create_table()?;
            for (k, v) in &sc.env {
                t.set(k.as_str(), v.as_str())?;
            }
            Ok(Some(t))
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "exec_vu",
        lua.create_function(move |lua, key: String| {
            let Some(vu) = c.vu() else {
                return Ok(Value::Nil);
            };
            Ok(match key.as_str() {
                "idInTest" => Value::Integer(vu.id_in_test as i64),
                "idInInstance" => Value::Integer(vu.id_in_instance as i64),
                "iterationInInstance" => Value::Integer(vu.iter.get() as i64),
                "iterationInScenario" => Value::Integer(vu.iter_in_scenario.get() as i64),
                _ => return Err(lua_err(lua, format!("exec.vu.{key} is not supported"))),
            })
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "exec_scenario",
        lua.create_function(move |lua, key: String| {
            let Some(vu) = c.vu() else {
                return Ok(Value::Nil);
            };
            let sc = vu.scenario();
            let Some(sc) = sc.as_ref() else {
                return Ok(Value::Nil);
            };
            Ok(match key.as_str() {
                "name" => Value::String(lua.create_string(&sc.name)?),
                "executor" => Value::String(lua.create_string(sc.executor)?),
                "iterationInTest" => Value::Integer(vu.iter_in_test.get() as i64),
                "iterationInInstance" => Value::Integer(vu.iter_in_test.get() as i64),
                "startTime" => Value::Number(sc.started.get().map_or(0.0, |t| {
                    (SystemTime::now() - t.elapsed())
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_millis() as f64)
                })),
                _ => {
                    return Err(lua_err(
                        lua,
                        format!("exec.scenario.{key} is not supported"),
                    ))
                }
            })
        })?,
    )?;
    let c = ctx.clone();
    native.set(
        "exec_instance",
        lua.create_function(move |lua, key: String| {
            use std::sync::atomic::Ordering::Relaxed;
            let run = &c.cfg.run;
            Ok(match key.as_str() {
                "vusActive" => Value::Integer(run.gauges.active.load(Relaxed) as i64),
                "vusInitialized" => Value::Integer(run.gauges.max.load(Relaxed) as i64),
                "iterationsCompleted" => Value::Integer(run.complete.load(Relaxed) as i64),
                "iterationsInterrupted" => Value::Integer(run.interrupted.load(Relaxed) as i64),
                "currentTestRunDuration" => {
                    Value::Number(c.cfg.started.elapsed().as_secs_f64() * 1000.0)
                }
                _ => {
                    return Err(lua_err(
                        lua,
                        format!("exec.instance.{key} is not supported"),
                    ))
                }
            })
        })?,
    )?;
    Ok(())
}
