//! A VU's loop as a local task: iterate while the executor wants it, count outcomes, and be
//! interruptible (aborting the task drops the iteration where it stands).

use super::shutdown::{RunState, Stop};
use super::{ScenarioRun, Vu};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::task::{AbortHandle, JoinSet};

/// Handle on a running VU loop.
pub struct VuTask {
    abort: AbortHandle,
    running: Rc<Cell<bool>>,
}

impl VuTask {
    /// Spawns the loop into `set` (on the worker's LocalSet). `want` is asked before every
    /// iteration; the loop ends when it says no or the run stops.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn spawn<V: Vu + 'static>(
        set: &mut JoinSet<()>,
        vu: Rc<RefCell<V>>,
        scenario: Rc<ScenarioRun>,
        run: Arc<RunState>,
        want: impl Fn() -> bool + 'static,
    ) -> VuTask {
        let running = Rc::new(Cell::new(true));
        let guard = ActiveGuard::new(run.clone(), running.clone());
        let abort = set.spawn_local(async move {
            let guard = guard;
            // The task owns the VU for its whole life: no other borrow exists while it runs
            // (a VU gets a new task only after this one ended), so holding it across awaits is safe.
            let mut vu = vu.borrow_mut();
            while want() && run.stop_level() == Stop::Running {
                guard.busy.set(true);
                let outcome = vu.iterate(&scenario).await;
                guard.busy.set(false);
                run.record(outcome);
                // Let other tasks run when this one used its scheduling budget (an iteration
                // that never awaits would otherwise starve them).
                tokio::task::consume_budget().await;
            }
        });
        VuTask { abort, running }
    }

    pub fn is_running(&self) -> bool {
        self.running.get()
    }

    /// Interrupts the VU mid-iteration (the iteration counts as interrupted).
    pub fn abort(&self) {
        self.abort.abort();
    }
}

/// Keeps `vus` right and counts an iteration cut short, however the task ends.
struct ActiveGuard {
    run: Arc<RunState>,
    busy: Cell<bool>,
    running: Rc<Cell<bool>>,
}

impl ActiveGuard {
    fn new(run: Arc<RunState>, running: Rc<Cell<bool>>) -> Self {
        run.gauges.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard {
            run,
            busy: Cell::new(false),
            running,
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.run.gauges.active.fetch_sub(1, Ordering::Relaxed);
        self.running.set(false);
        if self.busy.get() {
            self.run.count(false);
        }
    }
}
