//! `json`: encode and decode through serde_json (k6's JSON.stringify / JSON.parse). A
//! failure comes back as `(nil, message)` and the prelude raises the message at the
//! script's line: one plain message, not an mlua error object with a traceback inside.

use mlua::{Lua, LuaSerdeExt, Table, Value};

pub fn register(lua: &Lua, native: &Table) -> mlua::Result<()> {
    native.set("json_null", Value::NULL)?;
    native.set(
        "json_encode",
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
