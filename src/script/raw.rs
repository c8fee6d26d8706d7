//! Lua C functions written in Rust, for the calls a script makes per request (`check`, a
//! metric's `add`). An mlua callback converts its arguments and runs under a protected call
//! of its own; these read their arguments where they lie (`Slot`) and find the worker's
//! context in their first upvalue. POST loop with a Rate, a Trend and a check: 34,523 ->
//! 31,901 instructions per request against the Lua code and mlua callbacks they replace.
//!
//! A Lua error is a longjmp: a raw function raises only from a frame that holds no Rust
//! value with a destructor ([`raise`] pushes the message and drops it first).

use super::context::WorkerCtx;
use mlua::{ffi, Function, IntoLuaMulti, Lua};
use std::os::raw::c_int;
use std::rc::Rc;

/// A closure of `f` whose upvalues are the worker's context (1), then `upvalues` (2...).
/// The Lua state keeps the context alive for as long as it can call `f` (app data).
pub fn closure(
    lua: &Lua,
    ctx: &Rc<WorkerCtx>,
    f: ffi::lua_CFunction,
    upvalues: impl IntoLuaMulti,
) -> mlua::Result<Function> {
    if lua.app_data_ref::<Rc<WorkerCtx>>().is_none() {
        lua.set_app_data(ctx.clone());
    }
    let ptr = Rc::as_ptr(ctx) as *mut std::ffi::c_void;
    // SAFETY: exec_raw runs the closure on a stack that holds exactly the upvalues.
    unsafe {
        lua.exec_raw(upvalues, |state| {
            let n = ffi::lua_gettop(state);
            ffi::lua_pushlightuserdata(state, ptr);
            ffi::lua_rotate(state, 1, 1);
            ffi::lua_pushcclosure(state, f, n + 1);
        })
    }
}

/// The context of the raw function running on `state`.
///
/// # Safety
/// Only from a function made by [`closure`], while it runs.
pub unsafe fn ctx<'a>(state: *mut ffi::lua_State) -> &'a WorkerCtx {
    &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const WorkerCtx)
}

/// Raises `msg` as a Lua error located at the script line that made the call, as
/// `errors::lua_err` does for mlua callbacks.
///
/// # Safety
/// From a raw function, with no Rust value with a destructor alive in any frame between
/// this call and Lua (the message is dropped before the longjmp).
pub unsafe fn raise(state: *mut ffi::lua_State, msg: String) -> c_int {
    push_located(state, msg);
    ffi::lua_error(state)
}

unsafe fn push_located(state: *mut ffi::lua_State, msg: String) {
    let text = format!("{}{msg}", script_location(state));
    ffi::lua_pushlstring(state, text.as_ptr() as *const _, text.len());
}

/// "file:line: " of the innermost frame that is the script's, as `errors::lua_err` finds it
/// for mlua callbacks (this one walks the stack with the C API).
unsafe fn script_location(state: *mut ffi::lua_State) -> String {
    for level in 1..20 {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, level, &mut ar) == 0
            || ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut ar) == 0
        {
            break;
        }
        let short = std::ffi::CStr::from_ptr(ar.short_src.as_ptr()).to_string_lossy();
        if ar.currentline > 0 && super::errors::is_script_source(&short) {
            return format!("{short}:{}: ", ar.currentline);
        }
    }
    String::new()
}
