//! `res.timings`: the eight phases of a response as a userdata of eight numbers, read by
//! name (`res.timings.duration`), listed by `pairs`, written as a JSON object by
//! `json.encode` and `tostring`. A table of eight named fields cost ~1,800 instructions per
//! response to build (a hash insert per field, then the garbage collector's share), about 7%
//! of the POST loop; this is one allocation, and a read by name costs ~250 instructions
//! more than a table's.

use crate::http::Timings;
use crate::script::stack::Slot;
use mlua::{ffi, Lua};
use std::os::raw::c_int;

/// The registry name of the metatable (also its `__name`, which Lua's messages show).
const META: &std::ffi::CStr = c"timings";

/// k6's order (its JSON output), then the DNS lookup, which k6 folds into `blocked`.
const NAMES: [&str; 8] = [
    "blocked",
    "connecting",
    "tls_handshaking",
    "sending",
    "waiting",
    "receiving",
    "duration",
    "looking_up",
];

fn values(t: &Timings) -> [f64; 8] {
    [
        t.blocked,
        t.connecting,
        t.tls_handshaking,
        t.sending,
        t.waiting,
        t.receiving,
        t.duration,
        t.looking_up,
    ]
}

/// Makes the metatable; once per Lua state, before any response.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: a protected call on mlua's stack; only C functions and a string are pushed.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            ffi::luaL_newmetatable(state, META.as_ptr());
            for (name, f) in [
                (c"__index", index as ffi::lua_CFunction),
                (c"__pairs", pairs),
                (c"__newindex", read_only),
                (c"__tostring", to_string),
            ] {
                ffi::lua_pushcfunction(state, f);
                ffi::lua_setfield(state, -2, name.as_ptr());
            }
            ffi::lua_pop(state, 1);
        })
    }
}

/// Pushes `t` as a timings userdata. Raises only Lua's own memory error (no Rust value with a
/// destructor is alive here).
///
/// # Safety
/// A state where [`register`] ran, with room for two values on its stack.
pub unsafe fn push(state: *mut ffi::lua_State, t: &Timings) {
    let v = values(t);
    let p = ffi::lua_newuserdatauv(state, std::mem::size_of_val(&v), 0) as *mut [f64; 8];
    p.write_unaligned(v);
    ffi::luaL_setmetatable(state, META.as_ptr());
}

/// The eight numbers of a timings userdata, if `v` is one.
pub fn read(v: Slot) -> Option<[f64; 8]> {
    v.userdata_with_meta(META)
        .map(|p| unsafe { (p as *const [f64; 8]).read_unaligned() })
}

/// Writes the object `{"blocked":...,...}` as `json.encode` writes numbers.
pub fn write_json(v: &[f64; 8], out: &mut Vec<u8>) -> bool {
    out.push(b'{');
    for (i, (name, n)) in NAMES.iter().zip(v).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        if !n.is_finite() || serde_json::to_writer(&mut *out, n).is_err() {
            return false;
        }
    }
    out.push(b'}');
    true
}

fn position(name: &[u8]) -> Option<usize> {
    // A match compiles to a switch on the length and one comparison, not eight.
    Some(match name {
        b"blocked" => 0,
        b"connecting" => 1,
        b"tls_handshaking" => 2,
        b"sending" => 3,
        b"waiting" => 4,
        b"receiving" => 5,
        b"duration" => 6,
        b"looking_up" => 7,
        _ => return None,
    })
}

unsafe fn numbers<'a>(state: *mut ffi::lua_State) -> &'a [f64; 8] {
    &*(ffi::luaL_checkudata(state, 1, META.as_ptr()) as *const [f64; 8])
}

/// `t.duration`; nil for a name that is not a phase. Lua calls it with a timings userdata:
/// that is checked by its size alone (any block of this size reads safely), not by its
/// metatable, which cost as much again as the rest of a read.
unsafe extern "C-unwind" fn index(state: *mut ffi::lua_State) -> c_int {
    let v = if ffi::lua_type(state, 1) == ffi::LUA_TUSERDATA
        && ffi::lua_rawlen(state, 1) == std::mem::size_of::<[f64; 8]>()
    {
        &*(ffi::lua_touserdata(state, 1) as *const [f64; 8])
    } else {
        numbers(state)
    };
    match Slot::new(state, 2).bytes().and_then(position) {
        Some(i) => ffi::lua_pushnumber(state, v[i]),
        None => ffi::lua_pushnil(state),
    }
    1
}

/// `pairs(t)`: the phases in k6's order.
unsafe extern "C-unwind" fn pairs(state: *mut ffi::lua_State) -> c_int {
    numbers(state);
    ffi::lua_pushcfunction(state, next);
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushnil(state);
    3
}

unsafe extern "C-unwind" fn next(state: *mut ffi::lua_State) -> c_int {
    let v = numbers(state);
    let at = match Slot::new(state, 2) {
        k if k.is_nil() => 0,
        k => k.bytes().and_then(position).map_or(NAMES.len(), |i| i + 1),
    };
    if at >= NAMES.len() {
        ffi::lua_pushnil(state);
        return 1;
    }
    ffi::lua_pushlstring(state, NAMES[at].as_ptr() as *const _, NAMES[at].len());
    ffi::lua_pushnumber(state, v[at]);
    2
}

unsafe extern "C-unwind" fn read_only(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_error(
        state,
        c"res.timings is read-only (copy the numbers you need into a table)".as_ptr(),
    )
}

unsafe extern "C-unwind" fn to_string(state: *mut ffi::lua_State) -> c_int {
    let v = *numbers(state);
    // Copied out of the Vec before the push, which may raise (no destructor may be skipped).
    let mut text = [0u8; 512];
    let len = {
        let mut out = Vec::with_capacity(text.len());
        write_json(&v, &mut out);
        let len = out.len().min(text.len());
        text[..len].copy_from_slice(&out[..len]);
        len
    };
    ffi::lua_pushlstring(state, text.as_ptr() as *const _, len);
    1
}
