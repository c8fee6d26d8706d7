//! Everything that knows mlua: the Lua state of a worker, the prelude with k6's modules,
//! `require`, conversions, and driving VU coroutines. It decides nothing about *when* a VU
//! runs; it runs one iteration when asked and records through metric handles.

mod api;
pub mod context;
mod crypto;
pub(crate) mod http_glue;
mod intent;
mod stack;
mod tags;
pub mod vu;

pub use context::{WorkerConfig, WorkerCtx};
pub use vu::{CallError, LuaFactory, LuaVu, Shared};

use crate::error::{Error, Result};
use crate::metrics::{Buffer, Sample, TagInterner};
use context::{ErrorLog, VuState};
use crossbeam_channel::Sender;
use mlua::{Function, LightUserData, Lua, LuaOptions, LuaSerdeExt, StdLib, Table, Value};
use rand::SeedableRng;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

const PRELUDE: &str = include_str!("prelude.lua");

static SENTINEL_BYTE: u8 = 0;
/// The first value of every intent a VU coroutine yields to its driver.
pub(crate) const SENTINEL: LightUserData =
    LightUserData(&SENTINEL_BYTE as *const u8 as *mut std::ffi::c_void);

/// A worker's Lua state after the script's init code ran.
pub struct Script {
    pub lua: Lua,
    pub ctx: Rc<WorkerCtx>,
    pub vu_main: Function,
}

impl Script {
    /// Creates the state, installs the k6 modules and runs the script's init code.
    pub fn load(
        cfg: WorkerConfig,
        tx: Sender<Vec<Sample>>,
        interner: Arc<TagInterner>,
        worker_index: usize,
    ) -> Result<Script> {
        // The debug library is loaded for tracebacks of failed iterations.
        let lua =
            unsafe { Lua::unsafe_new_with(StdLib::ALL_SAFE | StdLib::DEBUG, LuaOptions::new()) };
        let client = crate::http::Client::new(
            cfg.policy,
            &cfg.user_agent,
            cfg.max_connections,
            cfg.net.clone(),
        )
        .map_err(Error::generic)?;
        let stamp = cfg.stamp_samples;
        let ctx = Rc::new(WorkerCtx {
            init_rng: RefCell::new(match cfg.seed {
                Some(s) => rand::rngs::SmallRng::seed_from_u64(s),
                None => rand::rngs::SmallRng::from_os_rng(),
            }),
            cfg,
            buffer: RefCell::new(Buffer::new(tx, interner, stamp)),
            client,
            current: RefCell::new(None),
            errors: ErrorLog::new(),
            worker_index,
            http_tags: RefCell::default(),
            response_callback: RefCell::new(http_glue::Expected::default_statuses()),
        });
        let vu_main = Rc::new(RefCell::new(None));
        let install = || -> mlua::Result<()> {
            set_package_path(&lua, &ctx.cfg.script_path)?;
            let e = api::primitives(&lua, &ctx, vu_main.clone())?;
            lua.load(PRELUDE).set_name("=prelude").call::<()>(e)?;
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
            .map_err(|e| Error::script(first_line(&error_text(&e))))?;
        let vu_main = vu_main
            .borrow_mut()
            .take()
            .expect("the prelude registers the VU body");
        Ok(Script { lua, ctx, vu_main })
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

    /// A global function of the script, if defined.
    pub fn function(&self, name: &str) -> Option<Function> {
        self.lua
            .globals()
            .get::<Option<Function>>(name)
            .ok()
            .flatten()
    }

    /// Converts JSON (setup data) into a Lua value of this state.
    pub fn value_from_json(&self, v: &serde_json::Value) -> Result<Value> {
        self.lua
            .to_value(v)
            .map_err(|e| Error::generic(format!("setup data: {e}")))
    }

    /// Converts a Lua value into JSON (setup's return value must be JSON, as in k6).
    pub fn value_to_json(&self, v: Value) -> Result<serde_json::Value> {
        self.lua
            .from_value(v)
            .map_err(|e| Error::script(format!("setup() must return JSON-compatible data: {e}")))
    }

    /// A VU outside any scenario (`__VU` = 0), for setup(), teardown() and handleSummary().
    pub fn lifecycle_vu(&self, data: Value) -> Result<LuaVu> {
        let shared = Rc::new(Shared {
            lua: self.lua.clone(),
            ctx: self.ctx.clone(),
            vu_main: self.vu_main.clone(),
            exec_fns: Vec::new(),
            data,
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
    let path =
        format!("{dir}/?.lua;{dir}/lib/?.lua;{dir}/../lib/?.lua;./lib/?.lua;{dir}/?/init.lua");
    let package: Table = lua.globals().get("package")?;
    package.set("path", path)?;
    package.set("cpath", "")?;
    Ok(())
}

/// The message of a Lua error, without mlua's wrapping.
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// An error raised by a Rust primitive, located at the script line that called it.
pub fn lua_err(lua: &Lua, msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{msg}", script_location(lua)))
}

/// "file:line: " of the innermost stack frame that belongs to the script, not the engine.
fn script_location(lua: &Lua) -> String {
    for level in 1..20 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            let short = src.short_src.map(|s| s.to_string()).unwrap_or_default();
            let line = d.current_line();
            (short, line)
        });
        match found {
            None => break,
            Some((short, Some(line)))
                if short != "prelude" && short != "[C]" && !short.is_empty() =>
            {
                return format!("{short}:{line}: ");
            }
            _ => {}
        }
    }
    String::new()
}
