//! `k6/http`: request arguments in (`request`), the response callback (`callback`), the
//! built-in metrics of every hop (`metrics`), the response out (`response`) and the VU's
//! cookie jar (`cookie_jar`). The requests themselves are sent by the VU driver (`vu.rs`).

pub mod callback;
mod cookie_jar;
pub mod failures;
pub mod metrics;
pub mod request;
pub mod response;
pub mod timings;

use crate::http::{Client, ConnectionPolicy};
use crate::script::context::{VuState, WorkerCtx};
use callback::Expected;
use mlua::{Lua, Table};
use std::borrow::Cow;
use std::rc::Rc;

/// `k6/http`'s primitives: the default response callback, lazy response fields, the jar.
pub fn register(lua: &Lua, native: &Table, ctx: &Rc<WorkerCtx>) -> mlua::Result<()> {
    let c = ctx.clone();
    native.set(
        "set_response_callback",
        lua.create_function(move |_, (on, bounds): (bool, mlua::Variadic<i64>)| {
            *c.response_callback.borrow_mut() = if on {
                let b: Vec<u16> = bounds.iter().map(|n| (*n).clamp(0, 999) as u16).collect();
                Expected::Statuses(b.chunks_exact(2).map(|p| (p[0], p[1])).collect())
            } else {
                Expected::Off
            };
            Ok(())
        })?,
    )?;
    native.set(
        "res_extra",
        lua.create_function(|lua, (t, k): (Table, String)| response::extra_field(lua, &t, &k))?,
    )?;
    timings::register(lua)?;
    cookie_jar::register(lua, native, ctx)
}

/// The pool this VU sends through, per the connection policy.
pub fn client_for<'a>(ctx: &'a WorkerCtx, vu: &VuState) -> Cow<'a, Client> {
    let http = ctx.http();
    match http.settings.policy {
        ConnectionPolicy::PerVu | ConnectionPolicy::PerIteration => Cow::Owned(
            vu.extras()
                .client
                .borrow_mut()
                .get_or_insert_with(|| {
                    // The worker's client was built from the same settings, so this cannot
                    // fail where that one did not.
                    Box::new(
                        http.settings
                            .vu_client()
                            .unwrap_or_else(|_| http.client.clone()),
                    )
                })
                .as_ref()
                .clone(),
        ),
        ConnectionPolicy::Shared | ConnectionPolicy::NoReuse => Cow::Borrowed(&http.client),
    }
}
