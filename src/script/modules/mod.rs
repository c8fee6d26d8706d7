//! The Rust side of the k6 modules, one file per module. Each `register` adds its
//! primitives to the `native` table that the prelude (`prelude.lua`) receives and turns
//! into k6-shaped modules:
//!
//! | Lua module      | file            |
//! |-----------------|-----------------|
//! | `k6`            | `k6.rs`         |
//! | `k6/http`       | `http/`         |
//! | `k6/metrics`    | `metrics.rs`    |
//! | `k6/execution`  | `execution.rs`  |
//! | `k6/crypto`     | `crypto.rs`     |
//! | `k6/encoding`   | `encoding.rs`   |
//! | `json`          | `json.rs`       |
//! | `engine`        | `engine.rs`     |
//! | globals (`console`, `open`, `math.random`) | `globals.rs` |

mod crypto;
mod encoding;
mod engine;
mod execution;
mod globals;
pub mod http;
mod json;
mod k6;
mod metrics;

use super::context::WorkerCtx;
use super::vu::VuBody;
use mlua::{Function, Lua, Table};
use std::cell::RefCell;
use std::rc::Rc;

/// Builds the `native` table the prelude receives. `vu_main` receives the VU coroutine body.
pub fn native(
    lua: &Lua,
    ctx: &Rc<WorkerCtx>,
    vu_main: Rc<RefCell<Option<VuBody>>>,
) -> mlua::Result<Table> {
    let native = lua.create_table()?;
    native.set(
        "set_vu_main",
        lua.create_function(move |lua, describe: Function| {
            let key = Rc::new(lua.create_registry_value(describe.clone())?);
            *vu_main.borrow_mut() = Some(VuBody {
                describe: key,
                placeholder: describe,
            });
            Ok(())
        })?,
    )?;
    json::register(lua, &native)?;
    k6::register(lua, &native, ctx)?;
    http::register(lua, &native, ctx)?;
    metrics::register(lua, &native, ctx)?;
    execution::register(lua, &native, ctx)?;
    crypto::register(lua, &native, ctx)?;
    encoding::register(lua, &native)?;
    engine::register(lua, &native, ctx)?;
    globals::register(lua, &native, ctx)?;
    Ok(native)
}

/// Runs `f` on the random stream of the running VU, or of init code outside any VU.
fn with_stream<R>(ctx: &WorkerCtx, f: impl FnOnce(&super::rng::Stream) -> R) -> R {
    match ctx.vu() {
        Some(vu) => f(&vu.rng),
        None => f(&ctx.init_rng),
    }
}

/// Runs `f` on that stream's generator.
fn with_rng<R>(ctx: &WorkerCtx, f: impl FnOnce(&mut super::rng::WyRand) -> R) -> R {
    with_stream(ctx, |s| s.with(f))
}
