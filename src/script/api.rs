//! The Rust primitives behind the prelude (`E.*`): checks, groups, metrics, randomness,
//! execution info, JSON, logging and files. Each converts, records, and returns.

use super::context::{VuState, WorkerCtx};
use super::tags::{custom_tags, table_pairs};
use super::{lua_err, SENTINEL};
use crate::metrics::{MetricId, MetricType, ValueType};
use mlua::{Function, Lua, LuaSerdeExt, Table, Value};
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Builds the `E` table the prelude receives. `vu_main` receives the VU coroutine body.
pub fn primitives(
    lua: &Lua,
    ctx: &Rc<WorkerCtx>,
    vu_main: Rc<RefCell<Option<Function>>>,
) -> mlua::Result<Table> {
    let e = lua.create_table()?;
    e.set("Y", Value::LightUserData(SENTINEL))?;
    e.set("json_null", Value::NULL)?;
    e.set(
        "set_vu_main",
        lua.create_function(move |_, f: Function| {
            *vu_main.borrow_mut() = Some(f);
            Ok(())
        })?,
    )?;
    register_json(lua, &e)?;
    register_checks_and_groups(lua, &e, ctx)?;
    register_metrics(lua, &e, ctx)?;
    register_random(lua, &e, ctx)?;
    register_execution(lua, &e, ctx)?;
    register_misc(lua, &e, ctx)?;
    super::crypto::register(lua, &e)?;
    Ok(e)
}

fn register_json(lua: &Lua, e: &Table) -> mlua::Result<()> {
    e.set(
        "json_encode",
        lua.create_function(|lua, v: Value| {
            let json: serde_json::Value = lua
                .from_value(v)
                .map_err(|err| lua_err(lua, format!("json.encode: {err}")))?;
            Ok(json.to_string())
        })?,
    )?;
    e.set(
        "json_decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let json: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|err| lua_err(lua, format!("json.decode: {err}")))?;
            lua.to_value(&json)
        })?,
    )?;
    Ok(())
}

fn register_checks_and_groups(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    e.set(
        "record_check",
        lua.create_function(move |lua, (name, ok, tags): (Value, bool, Option<Table>)| {
            let name = match name {
                Value::String(s) => s,
                other => lua.create_string(super::tags::plain(&other))?,
            };
            let vu = c.vu();
            let id = match (tags, vu.as_deref()) {
                // The common case, a check without extra tags in a VU: cached per (base tags, name).
                (None, Some(v)) => {
                    let base = custom_tags(&c, Some(v), None)?;
                    let key = super::http_glue::tag_key(base, &[&name.as_bytes()]);
                    let cached = c.http_tags.borrow().get(&key).copied();
                    match cached {
                        Some(id) => id,
                        None => {
                            let mut pairs = base_pairs(Some(v));
                            pairs.push(("check".into(), name.to_string_lossy()));
                            let id = c.buffer.borrow_mut().tags(pairs);
                            c.http_tags.borrow_mut().insert(key, id);
                            id
                        }
                    }
                }
                (tags, vu) => {
                    let mut pairs = base_pairs(vu);
                    pairs.push(("check".into(), name.to_string_lossy()));
                    if let Some(t) = tags {
                        pairs.extend(table_pairs(&t)?);
                    }
                    c.buffer.borrow_mut().tags(pairs)
                }
            };
            c.buffer
                .borrow_mut()
                .add(c.cfg.builtins.checks, id, if ok { 1.0 } else { 0.0 });
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    e.set(
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
            vu.groups.borrow_mut().push((path, Instant::now()));
            vu.base_tags.set(None);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    e.set(
        "group_exit",
        lua.create_function(move |_, ()| {
            let Some(vu) = c.vu() else { return Ok(()) };
            // group_duration carries the group it measured, so take the tags before leaving it.
            let pairs = base_pairs(Some(&vu));
            let Some((_, started)) = vu.groups.borrow_mut().pop() else {
                return Ok(());
            };
            vu.base_tags.set(None);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let mut buf = c.buffer.borrow_mut();
            let id = buf.tags(pairs);
            buf.add(c.cfg.builtins.group_duration, id, ms);
            Ok(())
        })?,
    )?;
    Ok(())
}

/// The tags every sample of a VU carries: scenario, group, and the scenario's own tags.
pub fn base_pairs(vu: Option<&VuState>) -> Vec<(String, String)> {
    let Some(vu) = vu else { return Vec::new() };
    let mut pairs = vec![
        ("group".to_string(), vu.group_path()),
        ("scenario".to_string(), vu.scenario_name()),
    ];
    if let Some(sc) = vu.scenario.borrow().as_ref() {
        pairs.extend(sc.tags.iter().cloned());
    }
    pairs
}

fn register_metrics(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    e.set(
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
    e.set(
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
            let tag_id = custom_tags(&c, vu.as_deref(), tags)?;
            c.buffer.borrow_mut().add(MetricId(id), tag_id, v);
            Ok(())
        })?,
    )?;
    Ok(())
}

fn with_rng<R>(ctx: &WorkerCtx, f: impl FnOnce(&mut rand::rngs::SmallRng) -> R) -> R {
    match ctx.vu() {
        Some(vu) => f(&mut vu.rng.borrow_mut()),
        None => f(&mut ctx.init_rng.borrow_mut()),
    }
}

fn register_random(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    // Lua 5.4's math.random semantics on the running VU's own stream.
    e.set(
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
    let c = ctx.clone();
    e.set(
        "random_seed",
        lua.create_function(move |_, seed: Option<f64>| {
            let s = seed.map(|s| s as u64).unwrap_or_else(rand::random);
            with_rng(&c, |rng| *rng = rand::rngs::SmallRng::seed_from_u64(s));
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    // k6/crypto's randomBytes: from the running VU's stream (repeatable under a seed).
    e.set(
        "random_bytes",
        lua.create_function(move |lua, n: i64| {
            if !(0..=1 << 20).contains(&n) {
                return Err(lua_err(
                    lua,
                    format!("randomBytes: size {n} is out of range"),
                ));
            }
            let mut bytes = vec![0u8; n as usize];
            with_rng(&c, |rng| rng.fill(&mut bytes[..]));
            lua.create_string(bytes)
        })?,
    )?;
    Ok(())
}

fn register_execution(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    e.set(
        "vu_id",
        lua.create_function(move |_, ()| Ok(c.vu().map_or(0, |v| v.id_in_test)))?,
    )?;
    let c = ctx.clone();
    e.set(
        "vu_iter",
        lua.create_function(move |_, ()| Ok(c.vu().map_or(0, |v| v.iter.get())))?,
    )?;
    let c = ctx.clone();
    e.set(
        "scenario_env",
        lua.create_function(move |_, key: mlua::LuaString| {
            let Some(vu) = c.vu() else { return Ok(None) };
            let sc = vu.scenario.borrow();
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
    e.set(
        "scenario_env_all",
        lua.create_function(move |lua, ()| {
            let Some(vu) = c.vu() else { return Ok(None) };
            let sc = vu.scenario.borrow();
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
    e.set(
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
    e.set(
        "exec_scenario",
        lua.create_function(move |lua, key: String| {
            let Some(vu) = c.vu() else {
                return Ok(Value::Nil);
            };
            let sc = vu.scenario.borrow();
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
    e.set(
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

fn register_misc(lua: &Lua, e: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    e.set(
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
    e.set(
        "now_ms",
        lua.create_function(|_, ()| {
            Ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64))
        })?,
    )?;
    let c = ctx.clone();
    e.set(
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
    // An engine extension (not in k6): run totals so far, for integrity checks in teardown.
    e.set(
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
                Some(t) => table_pairs(&t)?,
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
    super::http_glue::register_jar(lua, e, ctx)?;
    Ok(())
}
