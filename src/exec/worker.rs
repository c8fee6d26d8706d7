//! Worker threads: one OS thread per core, each with a current-thread tokio runtime and a
//! LocalSet, running its segment of every scenario. A worker shares nothing with the others
//! but the metric channel and the run state.

use super::executors::{self, ExecEnv};
use super::shutdown::RunState;
use super::{ScenarioRun, Segment, VuFactory};
use crate::error::{Error, Result};
use crate::options::Scenario;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What a worker body receives: its place in the plan and the start handshake.
pub struct WorkerSetup<T> {
    pub index: usize,
    pub count: usize,
    /// This process's execution segment, split equally among its workers.
    within: Segment,
    ready: Sender<(usize, Result<()>)>,
    go: Receiver<Option<T>>,
}

impl<T> WorkerSetup<T> {
    pub fn segment(&self) -> Segment {
        self.within.part(self.index as u64, self.count as u64)
    }

    /// Reports init done (or failed) and waits for the start signal with its payload;
    /// `None` means the run was cancelled before it started.
    pub fn ready_and_wait(&self, init: Result<()>) -> Option<T> {
        let failed = init.is_err();
        // The receiver lives in `Workers` until every worker has reported.
        let _ = self.ready.send((self.index, init));
        if failed {
            return None;
        }
        self.go.recv().ok().flatten()
    }
}

/// The running workers, from the main thread's side.
pub struct Workers<T> {
    handles: Vec<JoinHandle<Result<()>>>,
    ready: Receiver<(usize, Result<()>)>,
    go: Vec<Sender<Option<T>>>,
}

type BodyFuture = Pin<Box<dyn Future<Output = Result<()>>>>;

/// Starts `count` worker threads running `body` on their own runtime.
pub fn spawn_workers<T: Send + 'static>(
    count: usize,
    within: Segment,
    body: impl Fn(WorkerSetup<T>) -> BodyFuture + Send + Sync + 'static,
) -> Result<Workers<T>> {
    let body = Arc::new(body);
    let (ready_tx, ready_rx) = bounded(count);
    let mut handles = Vec::with_capacity(count);
    let mut go = Vec::with_capacity(count);
    for index in 0..count {
        let (go_tx, go_rx) = bounded(1);
        go.push(go_tx);
        let setup = WorkerSetup {
            index,
            count,
            within,
            ready: ready_tx.clone(),
            go: go_rx,
        };
        let body = body.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .stack_size(8 << 20)
            .spawn(move || {
                // A LocalRuntime, not a LocalSet on a current-thread runtime: the worker's
                // !Send tasks run from the runtime's own queue, without the LocalSet's tick,
                // queue and waker layered on it (~230 instructions per POST-loop request).
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build_local(Default::default())
                    .map_err(|e| Error::generic(format!("cannot start a worker runtime: {e}")))?;
                rt.block_on(body(setup))
            })
            .map_err(|e| Error::generic(format!("cannot start worker thread {index}: {e}")))?;
        handles.push(handle);
    }
    Ok(Workers {
        handles,
        ready: ready_rx,
        go,
    })
}

impl<T: Clone> Workers<T> {
    /// Waits until every worker ran its init code; the first failure is returned.
    pub fn wait_ready(&self) -> Result<()> {
        let mut first_err = None;
        for _ in 0..self.handles.len() {
            match self.ready.recv() {
                Ok((_, Ok(()))) => {}
                Ok((_, Err(e))) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::generic("a worker thread died during init"));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Starts every worker with `payload`, or cancels them with `None`.
    pub fn start(&self, payload: Option<T>) {
        for g in &self.go {
            // A worker that failed init no longer listens; that failure is already reported.
            let _ = g.send(payload.clone());
        }
    }

    /// Joins every worker; the first error wins.
    pub fn join(self) -> Result<()> {
        let mut result = Ok(());
        for h in self.handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(Error::generic("a worker thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Per-scenario state shared by all workers of this process.
pub struct SharedScenario {
    pub scenario: Scenario,
    pub vu_offset: u64,
    pub iterations_in_test: Arc<AtomicU64>,
    pub warned_short_of_vus: Arc<std::sync::atomic::AtomicBool>,
}

/// Builds the shared per-scenario state: VU number offsets and iteration counters.
pub fn share_scenarios(scenarios: &[Scenario]) -> Arc<Vec<SharedScenario>> {
    let mut offset = 0;
    Arc::new(
        scenarios
            .iter()
            .map(|s| {
                let shared = SharedScenario {
                    scenario: s.clone(),
                    vu_offset: offset,
                    iterations_in_test: Arc::default(),
                    warned_short_of_vus: Arc::default(),
                };
                offset += s.executor.max_vus();
                shared
            })
            .collect(),
    )
}

/// Runs this worker's segment of every scenario side by side, each from its startTime.
pub async fn run_scenarios<F: VuFactory>(
    factory: &F,
    segment: Segment,
    scenarios: &[SharedScenario],
    run: Arc<RunState>,
) -> Result<()> {
    let t0 = tokio::time::Instant::now();
    let runs = scenarios.iter().enumerate().map(|(index, shared)| {
        let s = &shared.scenario;
        let sc = Rc::new(ScenarioRun {
            index,
            name: s.name.clone(),
            executor: s.executor.name(),
            exec: s.exec.clone(),
            tags: s.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            iterations_in_test: shared.iterations_in_test.clone(),
            warned_short_of_vus: shared.warned_short_of_vus.clone(),
            vu_offset: shared.vu_offset,
            started: Cell::new(None),
        });
        let run = run.clone();
        async move {
            executors::sleep_or_stop(t0 + s.start_time, &run).await;
            if run.stop_level() != super::Stop::Running {
                return Ok(());
            }
            let env = ExecEnv {
                factory,
                segment,
                run,
                graceful_stop: s.graceful_stop,
            };
            s.executor
                .run(sc, env)
                .await
                .map_err(|e| Error::script(format!("scenario {}: {e}", s.name)))
        }
    });
    let results = super::join_all(runs.collect()).await;
    results.into_iter().collect()
}
