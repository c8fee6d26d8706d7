//! The worker-local sample buffer: a plain Vec filled without locks, shipped in batches.

use super::{MetricId, Sample, TagInterner, TagSetId};
use crossbeam_channel::Sender;
use std::sync::Arc;

const BATCH: usize = 4096;

/// Owned by one worker thread. `add` is a Vec push; a full batch goes to the aggregator.
pub struct Buffer {
    samples: Vec<Sample>,
    tx: Sender<Vec<Sample>>,
    interner: Arc<TagInterner>,
    cache: crate::fasthash::FastMap<Vec<(String, String)>, TagSetId>,
    /// Whether samples carry their time (only when a result output needs it).
    stamp: bool,
}

impl Buffer {
    pub fn new(tx: Sender<Vec<Sample>>, interner: Arc<TagInterner>, stamp: bool) -> Self {
        Buffer {
            samples: Vec::with_capacity(BATCH),
            tx,
            interner,
            cache: Default::default(),
            stamp,
        }
    }

    #[inline]
    pub fn add(&mut self, metric: MetricId, tags: TagSetId, value: f64) {
        let time_us = if self.stamp { super::now_us() } else { 0 };
        self.samples.push(Sample {
            metric,
            tags,
            value,
            time_us,
        });
        if self.samples.len() >= BATCH {
            self.flush();
        }
    }

    /// Interns a tag set (unsorted pairs), hitting the shared interner only on a local miss.
    pub fn tags(&mut self, pairs: Vec<(String, String)>) -> TagSetId {
        if let Some(&id) = self.cache.get(&pairs) {
            return id;
        }
        let (id, _) = self.interner.intern(pairs.clone());
        self.cache.insert(pairs, id);
        id
    }

    /// Ships what is buffered. A closed channel means the aggregator is gone (the run is
    /// over), so there is nobody left to count the samples.
    pub fn flush(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.samples, Vec::with_capacity(BATCH));
        // The aggregator lives until every worker has joined, so a send error cannot occur
        // during a run; ignoring it after the run is correct.
        let _ = self.tx.send(batch);
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.flush();
    }
}
