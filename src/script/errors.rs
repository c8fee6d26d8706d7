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

/// An init-code error on one line, without its traceback but with everything Lua said
/// before it: a `require`d module's own file:line and reason, or every path a missing
/// module was looked for in ("module 'x' not found: no file './x.lua'; no file ...").
pub fn one_line(s: &str) -> String {
    let message = s.split("\nstack traceback:").next().unwrap_or(s);
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return String::new();
    };
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        first.to_string()
    } else {
        format!("{first} {}", rest.join("; "))
    }
}

/// An error raised by a Rust primitive, located at the script line that called it.
pub fn lua_err(lua: &Lua, msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}{msg}", script_location(lua)))
}

/// Whether a frame's short source is the script's: not the engine's prelude or sandbox, not
/// a C function.
pub fn is_script_source(short: &str) -> bool {
    !matches!(short, "prelude" | "sandbox" | "[C]" | "")
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
            Some((short, Some(line))) if is_script_source(&short) => {
                return format!("{short}:{line}: ");
            }
            _ => {}
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_errors_keep_their_reason_on_one_line() {
        let syntax = "error loading module 'badmod' from file './badmod.lua':\n\t./badmod.lua:3: unexpected symbol near 'return'\nstack traceback:\n\t[C]: in ?";
        assert_eq!(
            one_line(syntax),
            "error loading module 'badmod' from file './badmod.lua': ./badmod.lua:3: unexpected symbol near 'return'"
        );
        let missing = "a.lua:1: module 'nomod' not found:\n\tno field package.preload['nomod']\n\tno file './nomod.lua'";
        assert_eq!(
            one_line(missing),
            "a.lua:1: module 'nomod' not found: no field package.preload['nomod']; no file './nomod.lua'"
        );
    }
}
