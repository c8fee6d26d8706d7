//! Interned tag sets: a sample carries a small id, not strings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sorted (key, value) pairs.
pub type TagSet = Arc<Vec<(String, String)>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagSetId(pub u32);

/// The run-wide interner. Workers keep their own cache in front of it, so the lock is taken
/// once per distinct tag set per worker, not per sample.
#[derive(Debug, Default)]
pub struct TagInterner {
    inner: Mutex<(Vec<TagSet>, HashMap<TagSet, TagSetId>)>,
}

impl TagInterner {
    pub fn intern(&self, mut tags: Vec<(String, String)>) -> (TagSetId, TagSet) {
        // Later pairs win (user tags over system tags): reverse, stable-sort by key, keep firsts.
        tags.reverse();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        let set: TagSet = Arc::new(tags);
        let mut inner = self.inner.lock().expect("interner lock");
        if let Some(&id) = inner.1.get(&set) {
            return (id, inner.0[id.0 as usize].clone());
        }
        let id = TagSetId(inner.0.len() as u32);
        inner.0.push(set.clone());
        inner.1.insert(set.clone(), id);
        (id, set)
    }

    pub fn get(&self, id: TagSetId) -> TagSet {
        self.inner.lock().expect("interner lock").0[id.0 as usize].clone()
    }
}
