//! `k6/encoding`: base64 in k6's four variants (std, rawstd, url, rawurl).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use mlua::{Lua, LuaString, Table};

fn b64_engine(variant: &str) -> Result<&'static base64::engine::GeneralPurpose, String> {
    Ok(match variant {
        "" | "std" => &STANDARD,
        "rawstd" => &STANDARD_NO_PAD,
        "url" => &URL_SAFE,
        "rawurl" => &URL_SAFE_NO_PAD,
        other => {
            return Err(format!(
                "unsupported base64 encoding {other:?} (std, rawstd, url, rawurl)"
            ))
        }
    })
}

/// `encoding.b64encode(data, variant)`.
pub fn b64encode(data: &[u8], variant: &str) -> Result<String, String> {
    Ok(b64_engine(variant)?.encode(data))
}

/// `encoding.b64decode(text, variant)`.
pub fn b64decode(text: &[u8], variant: &str) -> Result<Vec<u8>, String> {
    b64_engine(variant)?
        .decode(text)
        .map_err(|e| format!("b64decode: {e}"))
}

/// `b64encode` and `b64decode`.
pub fn register(lua: &Lua, native: &Table) -> mlua::Result<()> {
    use crate::script::errors::lua_err;
    let text = |s: &Option<LuaString>, default: &str| {
        s.as_ref()
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| default.to_string())
    };
    native.set(
        "b64encode",
        lua.create_function(
            move |lua, (data, variant): (LuaString, Option<LuaString>)| {
                b64encode(&data.as_bytes(), &text(&variant, "std")).map_err(|m| lua_err(lua, m))
            },
        )?,
    )?;
    native.set(
        "b64decode",
        lua.create_function(
            move |lua, (data, variant): (LuaString, Option<LuaString>)| {
                let out = b64decode(&data.as_bytes(), &text(&variant, "std"))
                    .map_err(|m| lua_err(lua, m))?;
                lua.create_string(out)
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_round_trip() {
        let data = b"\xfb\xff\x00hello?";
        for v in ["std", "rawstd", "url", "rawurl"] {
            let e = b64encode(data, v).unwrap();
            assert_eq!(b64decode(e.as_bytes(), v).unwrap(), data);
        }
        assert_eq!(b64encode(b"hi?", "std").unwrap(), "aGk/");
        assert_eq!(b64encode(b"hi?", "url").unwrap(), "aGk_");
        assert_eq!(b64encode(b"h", "rawstd").unwrap(), "aA");
        assert!(b64decode(b"!!", "std").is_err());
    }
}
