//! `json`: encode and decode through serde_json (k6's JSON.stringify / JSON.parse). A
//! failure comes back as `(nil, message)` and the prelude raises the message at the
//! script's line: one plain message, not an mlua error object with a traceback inside.
//!
//! `json.encode` of the tables scripts send (string keys, or lists, of strings, numbers,
//! booleans and such tables) is written straight from the Lua stack (see `encode_fast`):
//! mlua's serde path turned every key and value into a registry reference and built a
//! serde_json tree first, a fifth of a journey beacon's instructions. Anything else (a
//! metatable, mixed or sparse keys, invalid UTF-8, NaN, deep nesting, userdata other than
//! `res.timings`, functions) takes the serde path, so its output and its errors are what
//! they always were.

use crate::script::stack::Slot;
use mlua::{ffi, Lua, LuaSerdeExt, Table, Value};
use std::os::raw::c_int;

pub fn register(lua: &Lua, native: &Table) -> mlua::Result<()> {
    native.set("json_null", Value::NULL)?;
    // SAFETY: a C function that only Lua calls, with its own state.
    native.set("json_encode_plain", unsafe {
        lua.create_c_function(encode_plain)?
    })?;
    native.set(
        "json_encode",
        // The serde path, after `json_encode_plain` gave nil (the prelude tries that first).
        lua.create_function(|lua, v: Value| {
            Ok(match lua.from_value::<serde_json::Value>(v) {
                Ok(json) => (Some(json.to_string()), None),
                Err(err) => (None, Some(format!("json.encode: {err}"))),
            })
        })?,
    )?;
    native.set(
        "json_decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            match serde_json::from_slice::<serde_json::Value>(&s.as_bytes()) {
                Ok(json) => Ok((lua.to_value(&json)?, None)),
                Err(err) => Ok((Value::Nil, Some(format!("json.decode: {err}")))),
            }
        })?,
    )?;
    Ok(())
}

thread_local! {
    /// `encode_plain`'s output, reused: not a local, so a memory error raised by the push
    /// skips no destructor.
    static ENCODED: std::cell::UnsafeCell<Vec<u8>> = const { std::cell::UnsafeCell::new(Vec::new()) };
}

/// `json_encode_plain(v)`: the JSON text of a plain value (see `encode_fast`), or nil when it
/// needs the serde path (`json_encode`). A C function, not an mlua callback: no protected
/// call, no argument conversion, no `String` per call (the journey encodes a payload per
/// beacon).
unsafe extern "C-unwind" fn encode_plain(state: *mut ffi::lua_State) -> c_int {
    // Nothing below calls into Lua before the push: the buffer is not reentered.
    let out = &mut *ENCODED.with(|b| b.get());
    out.clear();
    if ffi::lua_gettop(state) < 1 || !encode_fast(Slot::new(state, 1), out, 0) {
        ffi::lua_pushnil(state);
        return 1;
    }
    ffi::lua_pushlstring(state, out.as_ptr() as *const _, out.len());
    if out.capacity() > 1 << 20 {
        *out = Vec::new(); // a one-off big document is not kept
    }
    1
}

/// Deeper tables go the serde path (which also reports recursive ones).
const MAX_DEPTH: usize = 32;

/// Writes `v` as serde_json would write mlua's conversion of it, or returns false (and the
/// caller discards `out`) for anything outside the plain cases.
pub fn encode_fast(v: Slot, out: &mut Vec<u8>, depth: usize) -> bool {
    match v.kind() {
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if v.boolean() { b"true" } else { b"false" }),
        ffi::LUA_TNUMBER => match v.integer() {
            Some(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            None => {
                let n = v.number().unwrap_or(f64::NAN);
                if !n.is_finite() || serde_json::to_writer(&mut *out, &n).is_err() {
                    return false;
                }
            }
        },
        ffi::LUA_TSTRING => {
            if !write_str(v.bytes().unwrap_or_default(), out) {
                return false;
            }
        }
        ffi::LUA_TLIGHTUSERDATA if v.light_userdata() == Some(std::ptr::null_mut()) => {
            out.extend_from_slice(b"null")
        }
        ffi::LUA_TTABLE if depth < MAX_DEPTH => return encode_table(v, out, depth + 1),
        ffi::LUA_TUSERDATA => {
            return super::http::timings::read(v)
                .is_some_and(|t| super::http::timings::write_json(&t, out))
        }
        _ => return false,
    }
    true
}

/// Writes `b` as a JSON string, as serde_json writes it; false if it is not UTF-8. Most
/// strings a script encodes are plain ASCII with nothing to escape: those are copied as they
/// are, without serde_json's UTF-8 check and escape table (3% of a journey request's
/// instructions went there).
pub fn write_str(b: &[u8], out: &mut Vec<u8>) -> bool {
    if is_plain(b) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
        return true;
    }
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::to_writer(&mut *out, s).is_ok(),
        Err(_) => false,
    }
}

/// Whether every byte is printable ASCII other than `"` and `\\` (nothing to escape). Eight
/// bytes at a time (a byte-wise loop was ~4 instructions per byte of every string a journey
/// beacon encodes): a word has a byte below 0x20, at or above 0x80, or equal to one of the
/// two, exactly when the classic "has a zero byte" tests below say so.
fn is_plain(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let plain_word = |w: u64| {
        w & HIGH == 0 // all ASCII, so the "below 0x20" test is exact
            && w.wrapping_sub(ONES * 0x20) & !w & HIGH == 0
            && !zero_byte(w ^ (ONES * u64::from(b'"')))
            && !zero_byte(w ^ (ONES * u64::from(b'\\')))
    };
    let mut words = b.chunks_exact(8);
    if !words
        .by_ref()
        .all(|w| plain_word(u64::from_le_bytes(w.try_into().expect("8 bytes"))))
    {
        return false;
    }
    words
        .remainder()
        .iter()
        .all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\')
}

fn encode_table(t: Slot, out: &mut Vec<u8>, depth: usize) -> bool {
    if t.has_metatable() {
        return false; // mlua's array marker, or a table with its own idea of itself
    }
    let len = t.raw_len();
    let mut entries = 0usize;
    if len > 0 {
        // A list: keys 1..len and nothing else, every value present.
        out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                out.push(b',');
            }
            let written = t
                .with_index(i as i64, |item| {
                    !item.is_nil() && encode_fast(item, out, depth)
                })
                .unwrap_or(false);
            if !written {
                return false;
            }
        }
        out.push(b']');
        let counted = t.pairs(|_, _| {
            entries += 1;
            Ok(())
        });
        return counted.is_ok() && entries == len;
    }
    // A map: string keys only. An Err stops the walk, and the caller takes the serde path.
    out.push(b'{');
    let walked = t.pairs(|k, item| {
        let key = k.bytes().ok_or_else(String::new)?;
        if entries > 0 {
            out.push(b',');
        }
        entries += 1;
        if !write_str(key, out) {
            return Err(String::new());
        }
        out.push(b':');
        if !encode_fast(item, out, depth) {
            return Err(String::new());
        }
        Ok(())
    });
    out.push(b'}');
    walked.is_ok()
}

#[cfg(test)]
mod tests {
    use super::write_str;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The ASCII fast path and the serde path write every string alike.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(
            s in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f]|é|\u{2028}){0,40}"
        ) {
            let mut out = Vec::new();
            prop_assert!(write_str(s.as_bytes(), &mut out));
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }

        /// The word-at-a-time test says "nothing to escape" exactly when a byte-wise one does.
        #[test]
        fn plain_is_decided_as_byte_by_byte(
            plain in proptest::collection::vec(
                (0x20u8..0x80).prop_filter("escaped", |c| *c != b'"' && *c != b'\\'),
                0..40,
            ),
            odd in prop_oneof![0x1eu8..0x24, 0x5bu8..0x5e, 0x7eu8..0x82, any::<u8>()],
            at in any::<proptest::sample::Index>(),
        ) {
            // Plain bytes with one byte from near each boundary put anywhere (a string is
            // judged by its first odd byte, so one is the case to get right).
            let mut b = plain.clone();
            b.insert(at.index(plain.len() + 1), odd);
            let bytewise = b.iter().all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\');
            prop_assert_eq!(super::is_plain(&b), bytewise);
        }

        #[test]
        fn bytes_that_are_not_utf8_are_refused(mut b in proptest::collection::vec(any::<u8>(), 0..24)) {
            b.push(0xff);
            prop_assert!(!write_str(&b, &mut Vec::new()));
        }
    }
}
