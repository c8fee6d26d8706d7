//! Values read straight off a Lua stack. mlua's generic conversions turn every string and
//! table that crosses into Rust into a registry reference (created, then dropped); an HTTP
//! call crosses with a dozen such values, which measured ~8,000 of a request's ~57,000
//! instructions. A `Slot` reads a value where it lies instead.
//!
//! Nothing here calls into Lua code or allocates in Lua (no metamethods, no number-to-string
//! conversion in place), so no Lua error can unwind through these frames.

use mlua::ffi;
use std::os::raw::c_int;

/// One value on a Lua stack, by absolute index.
#[derive(Clone, Copy)]
pub struct Slot {
    state: *mut ffi::lua_State,
    idx: c_int,
}

impl Slot {
    /// # Safety
    /// `idx` must be a valid index of `state`, and the slot must not be used after the stack
    /// is popped below it.
    pub unsafe fn new(state: *mut ffi::lua_State, idx: c_int) -> Slot {
        Slot {
            state,
            idx: ffi::lua_absindex(state, idx),
        }
    }

    pub fn kind(self) -> c_int {
        unsafe { ffi::lua_type(self.state, self.idx) }
    }

    pub fn is_nil(self) -> bool {
        self.kind() <= ffi::LUA_TNIL
    }

    pub fn is_table(self) -> bool {
        self.kind() == ffi::LUA_TTABLE
    }

    pub fn type_name(self) -> &'static str {
        match self.kind() {
            ffi::LUA_TNIL | ffi::LUA_TNONE => "nil",
            ffi::LUA_TBOOLEAN => "boolean",
            ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => "userdata",
            ffi::LUA_TNUMBER => "number",
            ffi::LUA_TSTRING => "string",
            ffi::LUA_TTABLE => "table",
            ffi::LUA_TFUNCTION => "function",
            _ => "thread",
        }
    }

    /// The bytes of a string (numbers are not strings here: converting one in place would
    /// change a key under `lua_next`).
    pub fn bytes(&self) -> Option<&[u8]> {
        if self.kind() != ffi::LUA_TSTRING {
            return None;
        }
        unsafe {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(self.state, self.idx, &mut len);
            Some(std::slice::from_raw_parts(p as *const u8, len))
        }
    }

    pub fn number(self) -> Option<f64> {
        if self.kind() != ffi::LUA_TNUMBER {
            return None;
        }
        Some(unsafe { ffi::lua_tonumberx(self.state, self.idx, std::ptr::null_mut()) })
    }

    /// A number of the integer subtype.
    pub fn integer(self) -> Option<i64> {
        if self.kind() != ffi::LUA_TNUMBER
            || unsafe { ffi::lua_isinteger(self.state, self.idx) } == 0
        {
            return None;
        }
        Some(unsafe { ffi::lua_tointegerx(self.state, self.idx, std::ptr::null_mut()) })
    }

    pub fn boolean(self) -> bool {
        unsafe { ffi::lua_toboolean(self.state, self.idx) != 0 }
    }

    pub fn light_userdata(self) -> Option<*mut std::ffi::c_void> {
        (self.kind() == ffi::LUA_TLIGHTUSERDATA)
            .then(|| unsafe { ffi::lua_touserdata(self.state, self.idx) })
    }

    /// A scalar as text, as `tostring` would write it ("" for nil); None for tables,
    /// functions and other objects.
    pub fn text(self) -> Option<String> {
        if let Some(b) = self.bytes() {
            return Some(String::from_utf8_lossy(b).into_owned());
        }
        if let Some(i) = self.integer() {
            return Some(i.to_string());
        }
        match self.kind() {
            ffi::LUA_TNUMBER => self.number().map(|n| n.to_string()),
            ffi::LUA_TBOOLEAN => Some(self.boolean().to_string()),
            ffi::LUA_TNIL | ffi::LUA_TNONE => Some(String::new()),
            _ => None,
        }
    }

    /// The block of a full userdata whose metatable is the registry's `name` (one made with
    /// `luaL_newmetatable`), as `luaL_testudata` finds it.
    pub fn userdata_with_meta(self, name: &std::ffi::CStr) -> Option<*mut std::ffi::c_void> {
        if self.kind() != ffi::LUA_TUSERDATA {
            return None;
        }
        unsafe {
            if ffi::lua_checkstack(self.state, 2) == 0 {
                return None;
            }
            // The name is a key the registry holds: its string exists, nothing is allocated.
            let p = ffi::luaL_testudata(self.state, self.idx, name.as_ptr());
            (!p.is_null()).then_some(p)
        }
    }

    /// Whether the value has a metatable (a table's own behaviour, or mlua's array marker).
    pub fn has_metatable(self) -> bool {
        unsafe {
            if ffi::lua_checkstack(self.state, 1) == 0 {
                return true; // callers treat a metatable as "not plain": the safe answer
            }
            if ffi::lua_getmetatable(self.state, self.idx) == 0 {
                return false;
            }
            ffi::lua_pop(self.state, 1);
            true
        }
    }

    /// `#t` without metamethods (a border of the table's sequence), 0 for a non-table.
    pub fn raw_len(self) -> usize {
        if !self.is_table() {
            return 0;
        }
        unsafe { ffi::lua_rawlen(self.state, self.idx) }
    }

    /// Calls `f` with `t[i]` (raw) on the stack, then pops it; None for a non-table or
    /// when the stack cannot grow.
    pub fn with_index<R>(self, i: i64, f: impl FnOnce(Slot) -> R) -> Option<R> {
        unsafe {
            if !self.is_table() || ffi::lua_checkstack(self.state, 1) == 0 {
                return None;
            }
            ffi::lua_rawgeti(self.state, self.idx, i as ffi::lua_Integer);
            let r = f(Slot::new(self.state, -1));
            ffi::lua_pop(self.state, 1);
            Some(r)
        }
    }

    /// Calls `f(key, value)` for every entry of a table, in `next` order, without
    /// metamethods. Stops at the first error. Does nothing for a non-table.
    pub fn pairs(self, mut f: impl FnMut(Slot, Slot) -> Result<(), String>) -> Result<(), String> {
        if !self.is_table() {
            return Ok(());
        }
        let state = self.state;
        unsafe {
            if ffi::lua_checkstack(state, 3) == 0 {
                return Err("Lua stack overflow".into());
            }
            let top = ffi::lua_gettop(state);
            ffi::lua_pushnil(state);
            // lua_next cannot fail here: every key it is given is one it returned, unchanged.
            while ffi::lua_next(state, self.idx) != 0 {
                let (k, v) = (Slot::new(state, -2), Slot::new(state, -1));
                if let Err(e) = f(k, v) {
                    ffi::lua_settop(state, top);
                    return Err(e);
                }
                ffi::lua_settop(state, top + 1); // keep the key for the next step
            }
            ffi::lua_settop(state, top);
        }
        Ok(())
    }
}
