//! Results while a run happens and after it: the `--out` specs, the web dashboard and its
//! HTML report, and Prometheus remote write. Everything here reads the aggregator (snapshots
//! and time series) from its own threads; nothing runs on a worker.
//!
//! - `spec.rs`: `--out NAME[=ARGS]` and the `K6_*` variables of each output, checked before
//!   the script runs.
//! - `state.rs`: the JSON the dashboard and the report draw (plan, series, summary).
//! - `dashboard.rs`: the HTTP server, server-sent events, and the publisher thread.
//! - `report.rs`: the self-contained HTML file.
//! - `prom/`: the remote-write mapping, protobuf messages and the pushing thread.

pub mod dashboard;
pub mod prom;
pub mod report;
pub mod spec;
pub mod state;

pub use spec::OutputSpec;

use crate::metrics::{Snapshot, SnapshotRequester};
use crate::thresholds::{Threshold, Verdict};

/// The live outputs of one run, started before the test and finished after it.
#[derive(Default)]
pub struct LiveOutputs {
    pub dashboard: Option<dashboard::Dashboard>,
    pub prom: Option<prom::Pusher>,
}

impl LiveOutputs {
    /// Starts what the specs ask for. The dashboard needs the time series, which the caller
    /// turns on in the aggregator when [`needs_series`] says so.
    pub fn start(
        specs: &[OutputSpec],
        requester: &SnapshotRequester,
        thresholds: &[Threshold],
        meta: serde_json::Value,
        funnel: Option<state::FunnelSpec>,
        trend_stats: &[String],
    ) -> crate::error::Result<LiveOutputs> {
        let mut live = LiveOutputs::default();
        for spec in specs {
            match spec {
                OutputSpec::WebDashboard(cfg) => {
                    live.dashboard = Some(dashboard::Dashboard::start(
                        cfg.clone(),
                        requester.clone(),
                        thresholds.to_vec(),
                        meta.clone(),
                        funnel.clone(),
                        trend_stats.to_vec(),
                    )?)
                }
                OutputSpec::PrometheusRw(cfg) => {
                    live.prom = Some(prom::Pusher::start(cfg.clone(), requester.clone())?)
                }
                OutputSpec::Json(_) | OutputSpec::Csv(_) | OutputSpec::Part(_) => {}
            }
        }
        Ok(live)
    }

    /// Lines for the banner's `output:` list.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = &self.dashboard {
            out.extend(d.describe());
        }
        if let Some(p) = &self.prom {
            out.push(p.describe());
        }
        out
    }

    /// Call before the aggregator finishes (the dashboard reads its last time series):
    /// the dashboard's last events and report, the last push. `snap` and `verdicts` are
    /// the final results.
    pub fn finish(self, snap: &Snapshot, verdicts: &[Verdict]) {
        if let Some(p) = self.prom {
            p.finish(snap);
        }
        if let Some(d) = self.dashboard {
            d.finish(snap, verdicts);
        }
    }
}

/// Whether any output needs the aggregator's time series.
pub fn needs_series(specs: &[OutputSpec]) -> bool {
    specs
        .iter()
        .any(|s| matches!(s, OutputSpec::WebDashboard(_)))
}
