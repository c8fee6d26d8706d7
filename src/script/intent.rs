//! What a VU coroutine yields to its driver (an intent: end of iteration, sleep, HTTP) and
//! what the driver resumes it with. Both cross the Lua stack directly (see `stack.rs`): an
//! HTTP intent is parsed into a request where it lies, and a response is pushed as the
//! plain values the prelude's `build_response` takes.

use super::modules::http::request::{read_request, Prepared};
use super::modules::http::response::{pack_extra, to_lua_parts};
use super::modules::http::timings;
use super::stack::Slot;
use crate::http::Response;
use mlua::state::RawLua;
use mlua::{
    ffi, FromLua, FromLuaMulti, IntoLuaMulti, LightUserData, Lua, MultiValue, RegistryKey, Table,
    Value,
};
use std::os::raw::c_int;
use std::ptr;

static YIELD_MARK_BYTE: u8 = 0;
/// The first value of every intent a VU coroutine yields to its driver, so the driver tells
/// the engine's yields from a script's own `coroutine.yield()`.
pub const YIELD_MARK: LightUserData =
    LightUserData(&YIELD_MARK_BYTE as *const u8 as *mut std::ffi::c_void);

thread_local! {
    /// The memory limit of this thread's Lua state (one per worker thread, one on the main
    /// thread), for the pushes below that Lua cannot protect.
    pub static HEAP_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Refuses to push `bytes` more when the state would go over its limit: an allocation that
/// fails outside a protected call would abort the process, so it must not be tried.
unsafe fn check_headroom(state: *mut ffi::lua_State, bytes: usize) -> mlua::Result<()> {
    let limit = HEAP_LIMIT.with(|l| l.get());
    if limit == usize::MAX {
        return Ok(());
    }
    let used = ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) as usize * 1024;
    if used.saturating_add(bytes).saturating_add(4096) > limit {
        return Err(mlua::Error::MemoryError(format!(
            "not enough memory: a {bytes}-byte response does not fit the Lua heap's limit of {limit} bytes (--max-memory)"
        )));
    }
    Ok(())
}

// The prelude's opcodes (prelude.lua: OP_SLEEP, OP_HTTP, OP_BATCH).
const OP_SLEEP: i64 = 1;
const OP_HTTP: i64 = 2;
const OP_BATCH: i64 = 3;
/// Not yielded by Lua: what [`resume`] leaves when the coroutine died of an error.
const OP_RAISED: i64 = 4;

/// `sleep(seconds)`: yields `(YIELD_MARK, OP_SLEEP, seconds)` from C. A Lua wrapper would
/// stay on the stack of every sleeping VU: one call frame (64 bytes) and a Lua call per
/// sleep. `tonumber(seconds) or 0`, as k6 turns what it is given into a number.
///
/// # Safety
/// Only Lua calls it, as a C function (`Lua::create_c_function`), with its own state.
pub unsafe extern "C-unwind" fn sleep(state: *mut ffi::lua_State) -> c_int {
    if ffi::lua_isyieldable(state) == 0 {
        // Level 1 is the script's call: the message names its file and line. Nothing here
        // has a destructor for the error's longjmp to skip.
        return ffi::luaL_error(
            state,
            c"sleep() can only be called in VU code, setup() or teardown(), not in init code"
                .as_ptr(),
        );
    }
    let mut isnum = 0;
    let secs = ffi::lua_tonumberx(state, 1, &mut isnum);
    ffi::lua_settop(state, 0);
    ffi::lua_pushlightuserdata(state, YIELD_MARK.0);
    ffi::lua_pushinteger(state, OP_SLEEP as ffi::lua_Integer);
    ffi::lua_pushnumber(state, if isnum != 0 { secs } else { 0.0 });
    ffi::lua_yield(state, 3)
}

/// Resumes the VU coroutine `co` with `reply` and reads what it yields or returns.
///
/// Not mlua's `Thread::resume`: a coroutine that dies of an error is described here, on its
/// error value, with the traceback of where it died; mlua would give `tostring` of the
/// value only (a thrown table as "table: 0x...", the abort marker lost). So VU coroutines
/// run the script's function with no `xpcall` frame under it: 64 bytes less per sleeping
/// VU, and no message-handler call per iteration.
///
/// # Safety
/// `co` is a coroutine of `lua`'s state, suspended or ready to start, and `describe` holds
/// the prelude's `describe_error`.
pub unsafe fn resume(
    lua: &Lua,
    co: *mut ffi::lua_State,
    describe: &RegistryKey,
    reply: Reply,
) -> mlua::Result<Intent> {
    let describe = describe.id();
    // The closure runs as a protected C function whose stack holds the reply's values;
    // what it leaves there is read as the intent.
    lua.exec_raw::<Intent>(reply, |state| {
        let nargs = ffi::lua_gettop(state);
        ffi::luaL_checkstack(co, nargs, ptr::null());
        ffi::lua_xmove(state, co, nargs);
        let mut nres = 0;
        match ffi::lua_resume(co, state, nargs, &mut nres) {
            ffi::LUA_OK | ffi::LUA_YIELD => take_results(state, co, nres),
            _ => raised(state, co, describe),
        }
    })
}

/// [`resume`] without mlua where no Lua value has to cross: the reply is pushed onto the
/// coroutine itself, `lua_resume` needs no protected call around it (it is protected), and
/// a sleep or a request is read where it lies on the coroutine's stack. What returned is
/// dropped (a VU iteration's return value is not used); a reply with Lua values, a batch
/// and an error go through [`resume`]'s protected call. The POST loop: ~600 instructions
/// less per request than with `resume` alone.
///
/// # Safety
/// As [`resume`].
pub unsafe fn resume_direct(
    lua: &Lua,
    co: *mut ffi::lua_State,
    describe: &RegistryKey,
    reply: Reply,
) -> mlua::Result<Intent> {
    let nargs = match reply.push_raw(co) {
        Ok(pushed) => pushed?,
        Err(reply) => return resume(lua, co, describe, reply),
    };
    let mut nres = 0;
    match ffi::lua_resume(co, ptr::null_mut(), nargs, &mut nres) {
        ffi::LUA_OK => {
            ffi::lua_settop(co, 0);
            Ok(Intent::Foreign(Value::Nil))
        }
        ffi::LUA_YIELD => match read_plain(nres, |i| Slot::new(co, -nres + i)) {
            Some(intent) => {
                ffi::lua_pop(co, nres);
                Ok(intent)
            }
            // A batch's list (or a stray yield's values): read through mlua.
            None => lua.exec_raw::<Intent>((), |state| take_results(state, co, nres)),
        },
        _ => lua.exec_raw::<Intent>((), |state| raised(state, co, describe.id())),
    }
}

/// Moves the `n` values a resume left on `co` onto `state`, where mlua reads them.
unsafe fn take_results(state: *mut ffi::lua_State, co: *mut ffi::lua_State, n: c_int) {
    ffi::luaL_checkstack(state, n + 1, ptr::null());
    ffi::lua_xmove(co, state, n);
}

/// Leaves `(YIELD_MARK, OP_RAISED, what)` for the error on top of the dead coroutine `co`:
/// what `describe_error` makes of it and, when that is a message, `co`'s traceback after
/// it (its frames are intact until the coroutine is reset).
unsafe fn raised(state: *mut ffi::lua_State, co: *mut ffi::lua_State, describe: c_int) {
    ffi::luaL_checkstack(state, 8, ptr::null());
    ffi::lua_pushlightuserdata(state, YIELD_MARK.0);
    ffi::lua_pushinteger(state, OP_RAISED as ffi::lua_Integer);
    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, describe as ffi::lua_Integer);
    ffi::lua_xmove(co, state, 1);
    // If describing fails (a __tostring that raises), its own error is described instead.
    if ffi::lua_pcall(state, 1, 1, 0) != ffi::LUA_OK && ffi::lua_type(state, -1) != ffi::LUA_TSTRING
    {
        ffi::lua_pop(state, 1);
        ffi::lua_pushstring(state, c"error object is not a string".as_ptr());
    }
    if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
        let msg = ffi::lua_tostring(state, -1);
        ffi::luaL_traceback(state, co, msg, 0);
        ffi::lua_remove(state, -2);
    }
}

/// A yield of the VU coroutine, or a resume that ended it.
pub enum Intent {
    /// The coroutine died of an error: its description and traceback (a string), or
    /// `exec.test.abort`'s marker table.
    Raised(Value),
    /// Seconds as the script gave them.
    Sleep(f64),
    /// A request, or why its arguments are wrong (raised in the script).
    Http(Result<Prepared, String>),
    Batch(Option<Table>),
    /// An opcode this engine does not know.
    Unknown(i64),
    /// Not the engine's yield: the coroutine returned (this is its first return value), or
    /// a stray `coroutine.yield()`; the driver tells them apart by the coroutine's status.
    Foreign(Value),
}

impl FromLuaMulti for Intent {
    fn from_lua_multi(_: MultiValue, _: &Lua) -> mlua::Result<Self> {
        // Only Thread::resume produces intents, and it reads them from the stack.
        Err(mlua::Error::runtime(
            "an intent is read from the Lua stack only",
        ))
    }

    unsafe fn from_stack_multi(nvals: c_int, lua: &RawLua) -> mlua::Result<Self> {
        let state = lua.state();
        let arg = |i: c_int| Slot::new(state, -nvals + i);
        let at = |i: c_int| -> mlua::Result<Value> {
            if i < nvals {
                Value::from_stack(-nvals + i, lua)
            } else {
                Ok(Value::Nil)
            }
        };
        if let Some(intent) = read_plain(nvals, arg) {
            return Ok(intent);
        }
        Ok(match opcode(nvals, arg) {
            Some(OP_RAISED) => Intent::Raised(at(2)?),
            Some(OP_BATCH) => match at(2)? {
                Value::Table(t) => Intent::Batch(Some(t)),
                _ => Intent::Batch(None),
            },
            _ => Intent::Foreign(at(0)?),
        })
    }
}

/// The opcode of an engine intent (`YIELD_MARK, op, ...`), if that is what the values are.
fn opcode(nvals: c_int, arg: impl Fn(c_int) -> Slot) -> Option<i64> {
    if nvals < 2 || arg(0).light_userdata() != Some(YIELD_MARK.0) {
        return None;
    }
    arg(1).integer()
}

/// The intents read without mlua (a sleep, a request, an unknown opcode); `None` for those
/// that carry Lua values (a batch's list, an error) and for what is not an engine intent.
fn read_plain(nvals: c_int, arg: impl Fn(c_int) -> Slot) -> Option<Intent> {
    Some(match opcode(nvals, &arg)? {
        OP_SLEEP if nvals >= 3 => Intent::Sleep(arg(2).number().unwrap_or(0.0)),
        OP_SLEEP => Intent::Sleep(0.0),
        OP_HTTP if nvals >= 6 => Intent::Http(read_request(arg(2), arg(3), arg(4), arg(5))),
        OP_HTTP => Intent::Http(Err("http request: missing arguments".into())),
        OP_BATCH | OP_RAISED => return None,
        other => Intent::Unknown(other),
    })
}

/// What the driver resumes a VU coroutine with.
pub enum Reply {
    /// The argument of an iteration's function: setup()'s data.
    Start(Value),
    /// The same, as the registry slot that holds it (pushed without mlua).
    Registered(c_int),
    /// After a sleep.
    Nothing,
    /// An HTTP response, as `build_response`'s 6 parts.
    Response(Box<Response>),
    /// A value (http.batch's list of part lists).
    Value(Value),
    /// `(nil, message)`: the prelude raises the message at the script's line.
    Failure(String),
}

impl IntoLuaMulti for Reply {
    fn into_lua_multi(self, lua: &Lua) -> mlua::Result<MultiValue> {
        Ok(MultiValue::from_vec(match self {
            Reply::Start(data) => vec![data],
            Reply::Nothing => Vec::new(),
            Reply::Response(r) => to_lua_parts(lua, *r)?,
            Reply::Value(v) => vec![v],
            Reply::Failure(msg) => vec![Value::Nil, Value::String(lua.create_string(msg)?)],
            Reply::Registered(_) => {
                return Err(mlua::Error::runtime("a registry slot is pushed raw only"))
            }
        }))
    }

    unsafe fn push_into_stack_multi(self, lua: &RawLua) -> mlua::Result<c_int> {
        match self.push_raw(lua.state()) {
            Ok(pushed) => pushed,
            Err(Reply::Start(v)) | Err(Reply::Value(v)) => {
                lua.push_value(&v)?;
                Ok(1)
            }
            Err(_) => unreachable!("push_raw gives back only replies that carry Lua values"),
        }
    }
}

impl Reply {
    /// Pushes the reply onto `state` without mlua (`resume_direct` pushes onto the
    /// coroutine itself); gives it back if it carries Lua values, which only mlua can push.
    /// Strings are pushed unprotected (mlua's protected pushes cost a C call each); a memory
    /// limit is set, so there must be room for them first.
    unsafe fn push_raw(self, state: *mut ffi::lua_State) -> Result<mlua::Result<c_int>, Reply> {
        if ffi::lua_checkstack(state, 8) == 0 {
            return Ok(Err(mlua::Error::StackError));
        }
        let push_bytes = |b: &[u8]| {
            ffi::lua_pushlstring(state, b.as_ptr() as *const _, b.len());
        };
        Ok(Ok(match self {
            Reply::Start(_) | Reply::Value(_) => return Err(self),
            Reply::Registered(id) => {
                ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, id as ffi::lua_Integer);
                1
            }
            Reply::Nothing => 0,
            Reply::Failure(msg) => {
                if let Err(e) = check_headroom(state, msg.len()) {
                    return Ok(Err(e));
                }
                ffi::lua_pushnil(state);
                push_bytes(msg.as_bytes());
                2
            }
            Reply::Response(r) => {
                let extra = pack_extra(&r);
                let body = r.body.as_ref().map_or(0, |b| b.len());
                let error = r.error.as_ref().map_or(0, |e| e.message.len());
                if let Err(e) = check_headroom(state, body + error + extra.len()) {
                    return Ok(Err(e));
                }
                ffi::lua_pushinteger(state, r.status as ffi::lua_Integer);
                match &r.body {
                    Some(b) => push_bytes(b),
                    None => ffi::lua_pushnil(state),
                }
                match &r.error {
                    Some(e) => push_bytes(e.message.as_bytes()),
                    None => ffi::lua_pushnil(state),
                }
                ffi::lua_pushinteger(state, r.error_code() as ffi::lua_Integer);
                timings::push(state, &r.timings);
                push_bytes(&extra);
                6
            }
        }))
    }
}
