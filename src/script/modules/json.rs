//! `json`: encode and decode through serde_json (k6's JSON.stringify / JSON.parse).

use crate::script::errors::lua_err;
use mlua::{Lua, LuaSerdeExt, Table, Value};

pub fn register(lua: &Lua, native: &Table) -> mlua::Result<()> {
    native.set("json_null", Value::NULL)?;
    native.set(
        "json_encode",
        lua.create_function(|lua, v: Value| {
            let json: serde_json::Value = lua
                .from_value(v)
                .map_err(|err| lua_err(lua, format!("json.encode: {err}")))?;
            Ok(json.to_string())
        })?,
    )?;
    native.set(
        "json_decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let json: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|err| lua_err(lua, format!("json.decode: {err}")))?;
            lua.to_value(&json)
        })?,
    )?;
    Ok(())
}
