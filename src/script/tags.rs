//! Tag sets of samples recorded from Lua: the VU's base tags plus the script's own.

use super::context::{VuState, WorkerCtx};
use crate::metrics::TagSetId;
use mlua::{Table, Value};

/// Tags of a custom metric sample: base tags (cached per VU until its group changes) plus
/// the tags given to `add`.
pub fn custom_tags(
    ctx: &WorkerCtx,
    vu: Option<&VuState>,
    extra: Option<Table>,
) -> mlua::Result<TagSetId> {
    match (extra, vu) {
        (None, Some(vu)) => {
            if let Some(id) = vu.base_tags.get() {
                return Ok(id);
            }
            let id = ctx
                .buffer
                .borrow_mut()
                .tags(super::api::base_pairs(Some(vu)));
            vu.base_tags.set(Some(id));
            Ok(id)
        }
        (extra, vu) => {
            let mut pairs = super::api::base_pairs(vu);
            if let Some(t) = extra {
                pairs.extend(table_pairs(&t)?);
            }
            Ok(ctx.buffer.borrow_mut().tags(pairs))
        }
    }
}

/// A Lua table of tags as string pairs (numbers and booleans are written as text).
pub fn table_pairs(t: &Table) -> mlua::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        out.push((plain(&k), plain(&v)));
    }
    Ok(out)
}

/// The text of a scalar Lua value.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}
