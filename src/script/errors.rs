//! Lua errors as the user reads them: the message without mlua's wrapping, and errors
//! raised by Rust primitives located at the script line that called them.

use mlua::Lua;

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

pub fn first_line(s: &str) -> String {
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
