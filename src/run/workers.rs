//! The worker threads of a run: each loads its own Lua state (init code), connects it,
//! reports ready, waits for setup()'s data, then runs its segment of every scenario.

use super::prepare::Prepared;
use crate::error::Result;
use crate::exec::{self, SharedScenario, WorkerSetup, Workers};
use crate::metrics::{Sample, TagInterner};
use crate::script::{Script, ScriptConfig};
use std::sync::Arc;

/// setup()'s return value, shared by every worker (each converts it into its own state).
pub type SetupData = Arc<serde_json::Value>;

/// Starts the workers and waits until each has run the script's init code. On an init
/// failure the others are cancelled and the first error is returned.
pub fn start(test: &Prepared) -> Result<Workers<SetupData>> {
    let shared = exec::share_scenarios(&test.plan.options.scenarios);
    let body = WorkerBody {
        cfg: test.worker_cfg(),
        http: test.plan.http.clone(),
        tx: test.agg.tx.clone(),
        interner: test.interner.clone(),
        shared,
    };
    let workers = exec::spawn_workers(test.plan.workers, test.plan.segment, move |setup| {
        let body = body.clone();
        Box::pin(async move { body.run(setup).await })
    })?;
    if let Err(e) = workers.wait_ready() {
        cancel(workers);
        return Err(e);
    }
    Ok(workers)
}

/// Stops workers that are waiting to start, and waits for them.
pub fn cancel(workers: Workers<SetupData>) {
    workers.start(None);
    // The run already failed; a worker's own error would only repeat it.
    let _ = workers.join();
}

/// What each worker thread needs to build its state and run.
#[derive(Clone)]
struct WorkerBody {
    cfg: ScriptConfig,
    http: crate::http::Settings,
    tx: crossbeam_channel::Sender<Vec<Sample>>,
    interner: Arc<TagInterner>,
    shared: Arc<Vec<SharedScenario>>,
}

impl WorkerBody {
    async fn run(self, setup: WorkerSetup<SetupData>) -> Result<()> {
        let run = self.cfg.run.clone();
        let loaded = Script::load(self.cfg, self.tx, self.interner, setup.index)
            .and_then(|script| script.connect(self.http).map(|()| script));
        let script = match loaded {
            Ok(s) => s,
            Err(e) => {
                setup.ready_and_wait(Err(e));
                return Ok(());
            }
        };
        let Some(data) = setup.ready_and_wait(Ok(())) else {
            return Ok(());
        };
        let exec_names: Vec<&str> = self
            .shared
            .iter()
            .map(|s| s.scenario.exec.as_str())
            .collect();
        let factory = script.vu_factory(&exec_names, &data)?;
        let flusher = script.spawn_flusher();
        let result = exec::run_scenarios(&factory, setup.segment(), &self.shared, run).await;
        flusher.abort();
        script.flush_metrics();
        script.report_suppressed_errors();
        result
    }
}
