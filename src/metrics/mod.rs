//! Numbers only: metric identity, samples, tag sets, worker-local buffers, the aggregator
//! thread and its sinks. Knows nothing of HTTP, Lua or output formats.
//!
//! Flow: VU -> [`Buffer`] (worker-local, no lock) -> crossbeam channel (batches) ->
//! [`Aggregator`] thread -> one [`Sink`] per metric and tag set -> [`Snapshot`].

mod aggregator;
mod buffer;
mod registry;
mod sink;
mod tags;
pub mod timeseries;

pub use aggregator::{
    Aggregator, AggregatorHandle, SeriesSnapshot, Snapshot, SnapshotRequester, VuGauges,
};
pub use buffer::Buffer;
pub use registry::{Builtins, MetricDef, MetricId, MetricType, Registry, ValueType};
pub use sink::{Sink, TrendSink};
pub use tags::{TagInterner, TagSet, TagSetId};

/// One measurement: which metric, which tag set, what value, and when (µs since the Unix
/// epoch; 0 unless a result output asked for timestamps).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub metric: MetricId,
    pub tags: TagSetId,
    pub value: f64,
    pub time_us: u64,
}

/// A stream of every sample (`--out json=...`, `--out csv=...`), fed by the aggregator
/// thread, never by the workers. Implementations report write errors once and go on.
pub trait SampleOutput: Send {
    fn sample(&mut self, def: &MetricDef, tags: &TagSet, value: f64, time_us: u64);
    /// Flushes at the end of the run.
    fn finish(&mut self);
}

/// Now, in µs since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
