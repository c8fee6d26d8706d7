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

pub use aggregator::{
    Aggregator, AggregatorHandle, SeriesSnapshot, Snapshot, SnapshotRequester, VuGauges,
};
pub use buffer::Buffer;
pub use registry::{Builtins, MetricDef, MetricId, MetricType, Registry, ValueType};
pub use sink::Sink;
pub use tags::{TagInterner, TagSet, TagSetId};

/// One measurement: which metric, which tag set, what value, when (ms since the run began).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub metric: MetricId,
    pub tags: TagSetId,
    pub value: f64,
}
