//! The script's lifecycle functions, run once on the main thread's state: setup(),
//! teardown() and handleSummary(), each as a VU outside any scenario (`__VU` = 0), with its
//! timeout and k6's exit code for each way it can fail.

use super::vu::{tidy_traceback, CallError};
use super::Script;
use crate::error::{Error, ExitCode, Result};
use crate::options::duration;
use std::time::Duration;

/// A lifecycle function of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Setup,
    Teardown,
    HandleSummary,
}

impl Hook {
    /// The Lua function's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Setup => "setup",
            Hook::Teardown => "teardown",
            Hook::HandleSummary => "handleSummary",
        }
    }

    /// The exit code of a timeout (k6 has codes for setup and teardown only).
    fn timeout_code(self) -> ExitCode {
        match self {
            Hook::Setup => ExitCode::SetupTimeout,
            Hook::Teardown | Hook::HandleSummary => ExitCode::TeardownTimeout,
        }
    }
}

impl Script {
    /// Runs `hook(data)` if the script defines it (`None` when it does not). Returns its
    /// value as JSON (teardown's is always null, as k6 ignores it).
    pub async fn call_hook(
        &self,
        hook: Hook,
        data: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Option<Result<serde_json::Value>> {
        let f = self.function(hook.name())?;
        Some(self.call_hook_fn(hook, f, data, timeout).await)
    }

    async fn call_hook_fn(
        &self,
        hook: Hook,
        f: mlua::Function,
        data: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let name = hook.name();
        let arg = match data {
            Some(d) => self.value_from_json(d)?,
            None => mlua::Value::Nil,
        };
        let vu = self.lifecycle_vu()?;
        match tokio::time::timeout(timeout, vu.call(f, arg)).await {
            Err(_) => Err(Error::new(
                hook.timeout_code(),
                format!(
                    "{name}() execution timed out after {}",
                    duration::format(timeout)
                ),
            )),
            Ok(Ok(v)) if hook != Hook::Teardown => self.value_to_json(v),
            Ok(Ok(_)) => Ok(serde_json::Value::Null),
            Ok(Err(CallError::Abort(msg))) => Err(Error::new(
                ExitCode::ScriptAborted,
                format!("test aborted in {name}(): {msg}"),
            )),
            Ok(Err(CallError::Script(msg))) | Ok(Err(CallError::Engine(msg))) => Err(
                Error::script(format!("{name}() failed: {}", tidy_traceback(&msg))),
            ),
        }
    }
}
