//! Everything that knows mlua: the Lua state of a worker, the prelude with k6's modules,
//! `require`, conversions, and driving VU coroutines. It decides nothing about *when* a VU
//! runs; it runs one iteration when asked and records through metric handles.

pub mod context;
mod errors;
pub mod hooks;
mod intent;
mod modules;
mod preempt;
mod raw;
mod rng;
mod stack;
mod tag_cache;
pub mod vu;

#[cfg(test)]
mod tests;

pub use context::{ScriptConfig, WorkerCtx};
use errors::one_line;
pub use errors::{error_text, lua_err};
pub use vu::{CallError, LuaFactory, LuaVu, Shared};

use crate::error::{Error, Result};
use crate::metrics::{Buffer, Sample, TagInterner};
use context::{ErrorLog, VuState};
use crossbeam_channel::Sender;
use mlua::state::{GcIncParams, GcMode};
use mlua::{Function, Lua, LuaOptions, LuaSerdeExt, StdLib, Table, Value};
use modules::http::callback::Expected;
use rand::SeedableRng;
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

const PRELUDE: &str = include_str!("prelude.lua");
/// Removes what a load test must not do (programs, file writes, C code, binary chunks, the
/// debug library but its traceback) unless `--unsafe-lua`.
const SANDBOX: &str = include_str!("sandbox.lua");

/// A worker's Lua state after the script's init code ran.
/// Lua's `setpause`, in percent (Lua's default is 200).
const GC_PAUSE: i32 = 150;

pub struct Script {
    pub lua: Lua,
    pub ctx: Rc<WorkerCtx>,
    pub vu_main: vu::VuBody,
}

impl Script {
    /// Creates the state, installs the k6 modules and runs the script's init code. HTTP is
    /// set up later by [`Script::connect`], once the script's options are known.
    pub fn load(
        cfg: ScriptConfig,
        tx: Sender<Vec<Sample>>,
        interner: Arc<TagInterner>,
        worker_index: usize,
    ) -> Result<Script> {
        // The debug library is loaded for tracebacks of failed iterations.
        let lua =
            unsafe { Lua::unsafe_new_with(StdLib::ALL_SAFE | StdLib::DEBUG, LuaOptions::new()) };
        // A runaway table raises "not enough memory" in its iteration instead of taking the
        // process down; intent.rs checks the same budget before its unprotected pushes.
        lua.set_memory_limit(cfg.memory_limit)
            .map_err(|e| Error::generic(format!("cannot limit the Lua heap: {e}")))?;
        intent::HEAP_LIMIT.with(|l| l.set(cfg.memory_limit));
        // A cycle starts when the heap is 1.5x what the last one left, not Lua's 2x: at
        // full-journey's 25,000-VU peak most of the Lua heap is VU stacks that live all run
        // long, and garbage up to their size again was ~80 MB of RSS. Measured at 5,000 and
        // 25,000 VUs: no CPU cost beyond noise at 150 (120 cost 15% more CPU).
        lua.gc_set_mode(GcMode::Incremental(GcIncParams::default().pause(GC_PAUSE)));
        let stamp = cfg.stamp_samples;
        let ctx = Rc::new(WorkerCtx {
            init_rng: rng::Stream::new(match cfg.seed {
                Some(s) => rng::WyRand::seed_from_u64(s),
                None => rng::WyRand::from_os_rng(),
            }),
            cfg,
            buffer: RefCell::new(Buffer::new(tx, interner, stamp)),
            http: OnceCell::new(),
            preempt: preempt::Slot::watched(),
            current: RefCell::new(None),
            errors: ErrorLog::new("iteration errors"),
            request_failures: ErrorLog::new("request failures"),
            worker_index,
            tag_cache: RefCell::default(),
            sleeps: Rc::default(),
            response_callback: RefCell::new(Expected::default_statuses()),
        });
        let vu_main = Rc::new(RefCell::new(None));
        let install = || -> mlua::Result<()> {
            set_package_path(&lua, &ctx.cfg.script_path)?;
            let native = modules::native(&lua, &ctx, vu_main.clone())?;
            native.set("yield_mark", Value::LightUserData(intent::YIELD_MARK))?;
            native.set("sleep", unsafe { lua.create_c_function(intent::sleep)? })?;
            lua.load(PRELUDE).set_name("=prelude").call::<()>(native)?;
            if !ctx.cfg.unsafe_lua {
                lua.load(SANDBOX).set_name("=sandbox").exec()?;
            }
            let env = lua.create_table()?;
            for (k, v) in &ctx.cfg.env {
                env.set(k.as_str(), v.as_str())?;
            }
            let wrap: Function = lua.globals().get("__wrap_env")?;
            lua.globals().set("__ENV", wrap.call::<Table>(env)?)?;
            lua.globals().set("__wrap_env", Value::Nil)?;
            Ok(())
        };
        install().map_err(|e| Error::generic(format!("engine prelude failed: {e}")))?;
        let path = &ctx.cfg.script_path;
        let source = std::fs::read(path)
            .map_err(|e| Error::script(format!("cannot read script {}: {e}", path.display())))?;
        lua.load(source)
            .set_name(format!("@{}", path.display()))
            .exec()
            .map_err(|e| Error::script(one_line(&error_text(&e))))?;
        let vu_main = vu_main
            .borrow_mut()
            .take()
            .expect("the prelude registers the VU body");
        Ok(Script { lua, ctx, vu_main })
    }

    /// Builds this state's HTTP pool from the run's resolved settings; VU code needs it.
    pub fn connect(&self, settings: crate::http::Settings) -> Result<()> {
        let client = settings.worker_client().map_err(Error::config)?;
        // A second call would be a bug in the caller; the first settings stay.
        let _ = self.ctx.http.set(context::Http { settings, client });
        Ok(())
    }

    /// The script's `options` table as JSON (`{}` when it has none).
    pub fn options(&self) -> Result<serde_json::Value> {
        let v: Value = self
            .lua
            .globals()
            .get("options")
            .map_err(|e| Error::script(e.to_string()))?;
        if v.is_nil() {
            return Ok(serde_json::json!({}));
        }
        self.lua
            .from_value(v)
            .map_err(|e| Error::config(format!("options: {e}")))
    }

    /// Whether the script defines a global function of this name.
    pub fn defines(&self, name: &str) -> bool {
        self.function(name).is_some()
    }

    /// The VU factory of a worker: each scenario's exec function (by scenario index) and
    /// this state's copy of setup()'s data.
    pub fn vu_factory(&self, exec_names: &[&str], data: &serde_json::Value) -> Result<LuaFactory> {
        let exec_fns = exec_names
            .iter()
            .map(|name| {
                self.function(name)
                    .ok_or_else(|| Error::config(format!("exec function {name:?} is not defined")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LuaFactory {
            shared: Rc::new(Shared {
                lua: self.lua.clone(),
                ctx: self.ctx.clone(),
                vu_main: self.vu_main.clone(),
                exec_fns,
                data_slot: Some(
                    self.lua
                        .create_registry_value(self.value_from_json(data)?)
                        .map_err(|e| Error::generic(format!("setup data: {e}")))?,
                ),
            }),
            scenario_tags: Default::default(),
        })
    }

    /// Ships the samples this state recorded so far to the aggregator.
    pub fn flush_metrics(&self) {
        self.ctx.buffer.borrow_mut().flush();
    }

    /// Ships samples every 100 ms while the returned task lives, so thresholds and live
    /// outputs see a running test (call on the worker's LocalSet).
    pub fn spawn_flusher(&self) -> tokio::task::JoinHandle<()> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                ctx.buffer.borrow_mut().flush();
            }
        })
    }

    /// Prints how many error and warning lines the rate limits held back, if any.
    pub fn report_suppressed_errors(&self) {
        self.ctx.errors.report_suppressed();
        self.ctx.request_failures.report_suppressed();
    }

    /// A global function of the script, if defined.
    fn function(&self, name: &str) -> Option<Function> {
        self.lua
            .globals()
            .get::<Option<Function>>(name)
            .ok()
            .flatten()
    }

    /// Converts JSON (setup data) into a Lua value of this state.
    fn value_from_json(&self, v: &serde_json::Value) -> Result<Value> {
        self.lua
            .to_value(v)
            .map_err(|e| Error::generic(format!("setup data: {e}")))
    }

    /// Converts a Lua value into JSON (setup's return value must be JSON, as in k6).
    fn value_to_json(&self, v: Value) -> Result<serde_json::Value> {
        self.lua
            .from_value(v)
            .map_err(|e| Error::script(format!("setup() must return JSON-compatible data: {e}")))
    }

    /// A VU outside any scenario (`__VU` = 0), for setup(), teardown() and handleSummary().
    fn lifecycle_vu(&self) -> Result<LuaVu> {
        let shared = Rc::new(Shared {
            lua: self.lua.clone(),
            ctx: self.ctx.clone(),
            vu_main: self.vu_main.clone(),
            exec_fns: Vec::new(),
            data_slot: None,
        });
        let state = Rc::new(VuState::new(0, 0, self.ctx.cfg.seed));
        LuaVu::new(shared, state).map_err(|e| Error::generic(e.to_string()))
    }
}

/// `require "x"` looks in the script's folder, its `lib/`, the `lib/` beside it and `./lib`.
fn set_package_path(lua: &Lua, script: &std::path::Path) -> mlua::Result<()> {
    let dir = script
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ".".into());
    let mut templates: Vec<String> = Vec::new();
    for t in [
        format!("{dir}/?.lua"),
        format!("{dir}/lib/?.lua"),
        format!("{dir}/../lib/?.lua"),
        "./lib/?.lua".to_string(),
        format!("{dir}/?/init.lua"),
    ] {
        if !templates.contains(&t) {
            templates.push(t);
        }
    }
    let path = templates.join(";");
    let package: Table = lua.globals().get("package")?;
    package.set("path", path)?;
    package.set("cpath", "")?;
    Ok(())
}
