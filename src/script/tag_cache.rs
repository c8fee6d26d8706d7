//! Every tag set a Lua state records with: a VU's base tags (scenario, group, the scenario's
//! own tags), checks, HTTP samples and custom metric adds. Tag sets are interned by the
//! worker's buffer; this cache remembers them by a hash of what varies, so the strings of a
//! combination are built only the first time it is seen.

use super::context::{VuState, WorkerCtx};
use super::stack::Slot;
use crate::http::Response;
use crate::metrics::TagSetId;
use mlua::{Table, Value};

/// Unbounded URL or tag cardinality must not grow memory without end.
const MAX_ENTRIES: usize = 65_536;

/// The tags every sample of a VU carries: group, scenario, and the scenario's own tags.
pub fn base_pairs(vu: Option<&VuState>) -> Vec<(String, String)> {
    let Some(vu) = vu else { return Vec::new() };
    let mut pairs = vec![
        ("group".to_string(), vu.group_path()),
        ("scenario".to_string(), vu.scenario_name()),
    ];
    if let Some(sc) = vu.scenario() {
        pairs.extend(sc.tags.iter().cloned());
    }
    pairs
}

/// A VU's base tag set, cached on the VU until its group or scenario changes.
pub fn base(ctx: &WorkerCtx, vu: &VuState) -> TagSetId {
    if let Some(id) = vu.base_tags.get() {
        return id;
    }
    let id = ctx.buffer.borrow_mut().tags(base_pairs(Some(vu)));
    vu.base_tags.set(Some(id));
    id
}

/// Tags of a custom metric sample: the base tags plus the tags given to `add`, a table read
/// where it lies on the Lua stack. A tag set seen before is found by a hash of the table's
/// contents, without building its strings.
pub fn custom_slot(ctx: &WorkerCtx, vu: Option<&VuState>, extra: Option<Slot>) -> TagSetId {
    let base_id = vu.map(|v| base(ctx, v));
    let Some(t) = extra else {
        if let Some(id) = base_id {
            return id;
        }
        return ctx.buffer.borrow_mut().tags(Vec::new());
    };
    from_table(ctx, vu, base_id, b"custom", None, Some(t))
}

/// Feeds a tag key or value to the hasher: its kind, then its bytes or bits.
fn hash_scalar(h: &mut KeyHasher, s: Slot) {
    match (s.bytes(), s.integer()) {
        (Some(b), _) => {
            h.add(b"s");
            h.add(b);
        }
        (None, Some(i)) => {
            h.add(b"i");
            h.add(&i.to_le_bytes());
        }
        _ => {
            h.add(&[b'k', s.kind() as u8]);
            match s.kind() {
                mlua::ffi::LUA_TNUMBER => h.add(&s.number().unwrap_or(0.0).to_bits().to_le_bytes()),
                mlua::ffi::LUA_TBOOLEAN => h.add(&[s.boolean() as u8]),
                _ => h.add(slot_text(s).as_bytes()),
            }
        }
    }
}

/// A tag key or value as text, as [`plain`] writes it (a table or function by its type).
fn slot_text(s: Slot) -> String {
    s.text().unwrap_or_else(|| s.type_name().to_string())
}

/// Tags of a sample recorded with exactly these pairs (group_duration, dropped_iterations).
pub fn exact(ctx: &WorkerCtx, pairs: Vec<(String, String)>) -> TagSetId {
    ctx.buffer.borrow_mut().tags(pairs)
}

/// Tags of a check: the base tags, `check` (its name), and the check's own tags, a table
/// read where it lies. Cached by a hash of all three, so a known check allocates nothing.
pub fn check(ctx: &WorkerCtx, vu: Option<&VuState>, name: Slot, tags: Option<Slot>) -> TagSetId {
    let base_id = vu.map(|v| base(ctx, v));
    from_table(ctx, vu, base_id, b"check", Some(name), tags)
}

/// The base tags, then `check` = `name` if given, then a tag table read where it lies;
/// found by a hash of all of it (`kind` keeps custom and check sets apart), so a known set
/// builds no strings.
fn from_table(
    ctx: &WorkerCtx,
    vu: Option<&VuState>,
    base_id: Option<TagSetId>,
    kind: &[u8],
    name: Option<Slot>,
    tags: Option<Slot>,
) -> TagSetId {
    let mut h = KeyHasher::default();
    h.add(kind);
    h.add(&base_id.map_or(u64::MAX, |id| u64::from(id.0)).to_le_bytes());
    if let Some(n) = name {
        hash_scalar(&mut h, n);
    }
    if let Some(t) = tags {
        let _ = t.pairs(|k, v| {
            hash_scalar(&mut h, k);
            hash_scalar(&mut h, v);
            Ok(())
        });
    }
    let made = cached(ctx, h.finish(), || -> Result<TagSetId, ()> {
        let mut pairs = base_pairs(vu);
        if let Some(n) = name {
            pairs.push(("check".into(), slot_text(n)));
        }
        if let Some(t) = tags {
            let _ = t.pairs(|k, v| {
                pairs.push((slot_text(k), slot_text(v)));
                Ok(())
            });
        }
        Ok(ctx.buffer.borrow_mut().tags(pairs))
    });
    made.expect("building tags from a table cannot fail")
}

/// The tag set of an HTTP sample: base tags, method, status, url, name, proto, error code,
/// expected_response and the request's own tags (a `name` tag also replaces `url`, k6's way
/// to group dynamic URLs).
pub fn http(
    ctx: &WorkerCtx,
    vu: &VuState,
    res: &Response,
    expected: Option<bool>,
    user_tags: &[(String, String)],
) -> TagSetId {
    let base = base(ctx, vu);
    let code = res.error_code();
    let mut h = KeyHasher::default();
    h.add(&base.0.to_le_bytes());
    h.add(res.method.as_str().as_bytes());
    h.add(&res.status.to_le_bytes());
    h.add(res.url.as_bytes());
    h.add(res.proto.as_bytes());
    h.add(&code.to_le_bytes());
    h.add(&[expected.map_or(2, u8::from)]);
    for (k, v) in user_tags {
        h.add(k.as_bytes());
        h.add(v.as_bytes());
    }
    let made = cached(ctx, h.finish(), || -> Result<TagSetId, ()> {
        let mut pairs = base_pairs(Some(vu));
        pairs.push(("method".into(), res.method.to_string()));
        pairs.push(("status".into(), res.status.to_string()));
        pairs.push(("url".into(), res.url.clone()));
        pairs.push(("name".into(), res.url.clone()));
        if let Some(expected) = expected {
            pairs.push(("expected_response".into(), expected.to_string()));
        }
        if !res.proto.is_empty() {
            pairs.push(("proto".into(), res.proto.to_string()));
        }
        if code != 0 {
            pairs.push(("error_code".into(), code.to_string()));
        }
        if let Some((_, name)) = user_tags.iter().find(|(k, _)| k == "name") {
            pairs.push(("url".into(), name.clone()));
        }
        pairs.extend(user_tags.iter().cloned());
        Ok(ctx.buffer.borrow_mut().tags(pairs))
    });
    made.expect("building HTTP tags cannot fail")
}

/// The cached tag set for `key`, made by `make` the first time.
fn cached<E>(
    ctx: &WorkerCtx,
    key: u64,
    make: impl FnOnce() -> Result<TagSetId, E>,
) -> Result<TagSetId, E> {
    if let Some(&id) = ctx.tag_cache.borrow().get(&key) {
        return Ok(id);
    }
    let id = make()?;
    let mut cache = ctx.tag_cache.borrow_mut();
    if cache.len() >= MAX_ENTRIES {
        cache.clear();
    }
    cache.insert(key, id);
    Ok(id)
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

/// Hashes byte strings; each write starts with its length, so ("ab","c") and ("a","bc")
/// differ.
#[derive(Default)]
struct KeyHasher(crate::fasthash::Fold);

impl KeyHasher {
    fn add(&mut self, bytes: &[u8]) {
        use std::hash::Hasher;
        self.0.write(bytes);
    }

    fn finish(&self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}
