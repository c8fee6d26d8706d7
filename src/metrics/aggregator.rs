//! The aggregator thread: receives sample batches, owns the sinks, samples the VU gauges once
//! a second, and hands out snapshots.

use super::timeseries::TimeSeries;
use super::{
    Builtins, MetricDef, MetricId, Registry, Sample, SampleOutput, Sink, TagInterner, TagSet,
    TagSetId,
};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One series: a metric with one tag set.
#[derive(Debug, Clone)]
pub struct SeriesSnapshot {
    pub metric: MetricId,
    pub tags: TagSet,
    pub sink: Sink,
    /// The tag set's interning number: lower was seen first (k6 lists checks and groups in
    /// the order they were first seen).
    pub first_seen: u32,
}

/// An immutable view of every series, for thresholds and reports.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub defs: Vec<MetricDef>,
    pub series: Vec<SeriesSnapshot>,
    pub elapsed: Duration,
}

impl Snapshot {
    /// The metric over all its tag sets (None if the metric never got a sample).
    pub fn total(&self, metric: MetricId) -> Option<Sink> {
        self.matching(metric, &[])
    }

    /// The metric over the tag sets that contain every `filter` pair (a k6 sub-metric).
    pub fn matching(&self, metric: MetricId, filter: &[(String, String)]) -> Option<Sink> {
        let mut out: Option<Sink> = None;
        for s in self.series.iter().filter(|s| s.metric == metric) {
            if filter.iter().all(|f| s.tags.iter().any(|t| t == f)) {
                match &mut out {
                    None => out = Some(s.sink.clone()),
                    Some(acc) => acc.merge(&s.sink),
                }
            }
        }
        out
    }

    pub fn id(&self, name: &str) -> Option<MetricId> {
        self.defs
            .iter()
            .position(|d| d.name == name)
            .map(|i| MetricId(i as u32))
    }

    pub fn def(&self, id: MetricId) -> &MetricDef {
        &self.defs[id.0 as usize]
    }

    /// The series of one metric in the order their tag sets were first seen.
    pub fn in_first_seen_order(&self, metric: MetricId) -> Vec<&SeriesSnapshot> {
        let mut out: Vec<&SeriesSnapshot> =
            self.series.iter().filter(|s| s.metric == metric).collect();
        out.sort_by_key(|s| s.first_seen);
        out
    }
}

enum Control {
    Snapshot(Sender<Snapshot>),
    Outputs(Vec<Box<dyn SampleOutput>>),
    /// The test proper starts now: rates and durations count from here (after init/setup).
    StartClock,
    /// The scenarios are over: teardown and reporting do not count toward the duration.
    StopClock,
    /// Keep time series from now on (a dashboard or report needs them).
    Series(Box<TimeSeries>),
    /// The time series' closed points from a period on; `close` first closes the open
    /// period (at the end of the run). None if no time series are kept.
    SeriesJson {
        from: usize,
        close: bool,
        reply: Sender<Option<serde_json::Value>>,
    },
}

/// Gauges the aggregator samples itself (k6 samples `vus` and `vus_max` every second).
#[derive(Debug, Default)]
pub struct VuGauges {
    pub active: AtomicU64,
    pub max: AtomicU64,
}

/// Asks the aggregator for snapshots from anywhere (cheap to clone).
#[derive(Clone)]
pub struct SnapshotRequester {
    control: Sender<Control>,
}

impl SnapshotRequester {
    /// Everything received so far; None once the aggregator has finished.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = bounded(1);
        self.control.send(Control::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }

    /// The time series from period `from` on (see [`Control::SeriesJson`]); None once the
    /// aggregator has finished or if it keeps no time series.
    pub fn series_json(&self, from: usize, close: bool) -> Option<serde_json::Value> {
        let (reply, rx) = bounded(1);
        self.control
            .send(Control::SeriesJson { from, close, reply })
            .ok()?;
        rx.recv().ok().flatten()
    }
}

/// Handle the run keeps: the sample sender for workers, snapshot requests, and the join.
pub struct AggregatorHandle {
    pub tx: Sender<Vec<Sample>>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
    pub gauges: Arc<VuGauges>,
}

impl AggregatorHandle {
    pub fn requester(&self) -> SnapshotRequester {
        SnapshotRequester {
            control: self.control.clone(),
        }
    }

    /// Marks the start of the test proper (k6's rates divide by the run's duration, not by
    /// the time spent in init and setup).
    pub fn start_clock(&self) {
        self.control
            .send(Control::StartClock)
            .expect("aggregator thread lives until finish()");
    }

    /// Marks the end of the scenarios (see [`Self::start_clock`]).
    pub fn stop_clock(&self) {
        self.control
            .send(Control::StopClock)
            .expect("aggregator thread lives until finish()");
    }

    /// Keeps time series from now on.
    pub fn keep_series(&self, series: TimeSeries) {
        self.control
            .send(Control::Series(Box::new(series)))
            .expect("aggregator thread lives until finish()");
    }

    /// Starts streaming every sample from now on to these outputs.
    pub fn add_outputs(&self, outputs: Vec<Box<dyn SampleOutput>>) {
        if !outputs.is_empty() {
            self.control
                .send(Control::Outputs(outputs))
                .expect("aggregator thread lives until finish()");
        }
    }

    /// Everything received so far (the aggregator drains its queue first).
    pub fn snapshot(&self) -> Snapshot {
        let (tx, rx) = bounded(1);
        self.control
            .send(Control::Snapshot(tx))
            .expect("aggregator thread lives until finish()");
        rx.recv()
            .expect("aggregator answers every snapshot request")
    }

    /// Waits until every sender is gone and every sample counted, then returns the final view.
    /// Call it after every worker (and so every Buffer) is gone.
    pub fn finish(mut self) -> Snapshot {
        let (tx, snap_rx) = bounded(1);
        self.control
            .send(Control::Snapshot(tx))
            .expect("aggregator alive");
        drop(self.tx);
        let snap = snap_rx.recv().expect("final snapshot");
        if let Some(t) = self.thread.take() {
            t.join().expect("aggregator thread does not panic");
        }
        snap
    }
}

pub struct Aggregator {
    registry: Arc<Registry>,
    interner: Arc<TagInterner>,
    /// By tag-set id (dense), then the few metrics recorded with that tag set: a lookup is
    /// an index and a short scan instead of hashing the pair for every sample.
    sinks: Vec<Vec<(MetricId, Sink)>>,
    /// Where the last sample went (tag set, index in its list): a request's built-in
    /// samples arrive in the order their entries were made, so the next one is usually at
    /// the next index.
    last: (u32, usize),
    started: Instant,
    stopped: Option<Instant>,
    outputs: Vec<Box<dyn SampleOutput>>,
    /// Local copies for outputs, so a sample costs no lock.
    defs: Vec<MetricDef>,
    tagsets: HashMap<TagSetId, TagSet>,
    series: Option<Box<TimeSeries>>,
}

impl Aggregator {
    pub fn spawn(
        registry: Arc<Registry>,
        interner: Arc<TagInterner>,
        builtins: Builtins,
    ) -> AggregatorHandle {
        let (tx, rx) = unbounded::<Vec<Sample>>();
        let (ctl_tx, ctl_rx) = unbounded::<Control>();
        let gauges = Arc::new(VuGauges::default());
        let g = gauges.clone();
        let mut agg = Aggregator {
            registry,
            interner,
            sinks: Default::default(),
            last: (u32::MAX, 0),
            started: Instant::now(),
            stopped: None,
            outputs: Vec::new(),
            defs: Vec::new(),
            tagsets: HashMap::new(),
            series: None,
        };
        let thread = std::thread::Builder::new()
            .name("aggregator".into())
            .spawn(move || agg.run(rx, ctl_rx, &g, builtins))
            .expect("spawning the aggregator thread");
        AggregatorHandle {
            tx,
            control: ctl_tx,
            thread: Some(thread),
            gauges,
        }
    }

    fn run(
        &mut self,
        rx: Receiver<Vec<Sample>>,
        ctl: Receiver<Control>,
        gauges: &VuGauges,
        b: Builtins,
    ) {
        let no_tags = self.interner.intern(Vec::new()).0;
        let mut next_gauge = Instant::now();
        let mut pending: Vec<Control> = Vec::new();
        loop {
            // Gauges are sampled once a second from the moment the first VU exists.
            if gauges.max.load(Ordering::Relaxed) > 0 && Instant::now() >= next_gauge {
                let now = super::now_us();
                self.add_batch(vec![
                    Sample {
                        metric: b.vus,
                        tags: no_tags,
                        value: gauges.active.load(Ordering::Relaxed) as f64,
                        time_us: now,
                    },
                    Sample {
                        metric: b.vus_max,
                        tags: no_tags,
                        value: gauges.max.load(Ordering::Relaxed) as f64,
                        time_us: now,
                    },
                ]);
                next_gauge = Instant::now() + Duration::from_secs(1);
            }
            if let Some(ts) = &mut self.series {
                let (registry, interner) = (&self.registry, &self.interner);
                ts.tick(Instant::now(), &self.sinks, &|m, t| {
                    (registry.def(m), interner.get(t))
                });
            }
            self.poll_control(&ctl, &mut pending);
            if !pending.is_empty() {
                // Count every batch queued before the request, then answer it.
                for _ in 0..rx.len() {
                    match rx.try_recv() {
                        Ok(batch) => self.add_batch(batch),
                        Err(_) => break,
                    }
                }
                for c in pending.drain(..) {
                    self.answer(c);
                }
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(batch) => {
                    // Outputs asked for before this batch was sent must see it.
                    self.poll_control(&ctl, &mut pending);
                    self.add_batch(batch)
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    for c in ctl.try_iter() {
                        self.answer(c);
                    }
                    for o in &mut self.outputs {
                        o.finish();
                    }
                    return;
                }
            }
        }
    }

    /// Takes new outputs at once (they apply to every batch from now on); snapshot requests
    /// wait in `pending` until the queue is drained.
    fn poll_control(&mut self, ctl: &Receiver<Control>, pending: &mut Vec<Control>) {
        for c in ctl.try_iter() {
            match c {
                Control::Outputs(_)
                | Control::StartClock
                | Control::StopClock
                | Control::Series(_) => self.answer(c),
                snapshot => pending.push(snapshot),
            }
        }
    }

    fn add_batch(&mut self, batch: Vec<Sample>) {
        for s in &batch {
            self.add(s.metric, s.tags, s.value);
        }
        if !self.outputs.is_empty() {
            for s in &batch {
                self.emit(s);
            }
        }
    }

    fn emit(&mut self, s: &Sample) {
        if s.metric.0 as usize >= self.defs.len() {
            self.defs = self.registry.all();
        }
        let interner = &self.interner;
        let tags = self
            .tagsets
            .entry(s.tags)
            .or_insert_with(|| interner.get(s.tags));
        let time = if s.time_us == 0 {
            super::now_us()
        } else {
            s.time_us
        };
        for o in &mut self.outputs {
            o.sample(&self.defs[s.metric.0 as usize], tags, s.value, time);
        }
    }

    fn answer(&mut self, c: Control) {
        match c {
            // The requester may have given up waiting; nothing to do then.
            Control::Snapshot(reply) => drop(reply.send(self.snapshot())),
            Control::Outputs(o) => self.outputs.extend(o),
            Control::StartClock => {
                self.started = Instant::now();
                if let Some(ts) = &mut self.series {
                    ts.start(self.started);
                }
            }
            Control::StopClock => self.stopped = Some(Instant::now()),
            Control::Series(ts) => self.series = Some(ts),
            Control::SeriesJson { from, close, reply } => {
                let (registry, interner) = (&self.registry, &self.interner);
                let doc = self.series.as_mut().map(|ts| {
                    if close {
                        ts.close_period(&self.sinks, &|m, t| (registry.def(m), interner.get(t)));
                    }
                    ts.to_json(from, &self.registry.all())
                });
                drop(reply.send(doc));
            }
        }
    }

    #[inline]
    fn add(&mut self, metric: MetricId, tags: TagSetId, value: f64) {
        let t = tags.0 as usize;
        if t >= self.sinks.len() {
            self.sinks.resize_with(t + 1, Vec::new);
        }
        let list = &mut self.sinks[t];
        let next = if self.last.0 == tags.0 {
            self.last.1 + 1
        } else {
            0
        };
        let at = match list.get(next) {
            Some((m, _)) if *m == metric => next,
            _ => match list.iter().position(|(m, _)| *m == metric) {
                Some(i) => i,
                None => {
                    list.push((metric, Sink::new(self.registry.def(metric).kind)));
                    list.len() - 1
                }
            },
        };
        list[at].1.add(value);
        self.last = (tags.0, at);
    }

    fn snapshot(&self) -> Snapshot {
        let mut series: Vec<SeriesSnapshot> = self
            .sinks
            .iter()
            .enumerate()
            .filter(|(_, list)| !list.is_empty())
            .flat_map(|(t, list)| {
                let tags = self.interner.get(TagSetId(t as u32));
                list.iter().map(move |(metric, sink)| SeriesSnapshot {
                    metric: *metric,
                    tags: tags.clone(),
                    sink: sink.clone(),
                    first_seen: t as u32,
                })
            })
            .collect();
        series.sort_by(|a, b| (a.metric, &a.tags).cmp(&(b.metric, &b.tags)));
        Snapshot {
            defs: self.registry.all(),
            series,
            elapsed: self.stopped.unwrap_or_else(Instant::now) - self.started,
        }
    }
}
