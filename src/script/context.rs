//! Per-worker and per-VU state that the Lua primitives read: which VU is running, its RNG,
//! cookie jar, group path and counters, and the worker's metric buffer and HTTP pool.

use super::rng::{Stream, WyRand};
use crate::exec::{RunState, ScenarioRun};
use crate::http::{Client, CookieJar, Jar, Settings};
use crate::metrics::{Buffer, Builtins, Registry, TagSetId};
use rand::{RngCore, SeedableRng};
use std::cell::{Cell, OnceCell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// What a Lua state needs to run the script's init code; identical across workers.
#[derive(Clone)]
pub struct ScriptConfig {
    pub script_path: PathBuf,
    pub env: Vec<(String, String)>,
    pub seed: Option<u64>,
    pub registry: Arc<Registry>,
    pub builtins: Builtins,
    pub run: Arc<RunState>,
    pub started: Instant,
    /// Samples carry their time (a result output is on).
    pub stamp_samples: bool,
    /// Every sleep is divided by this (`--time-scale`).
    pub time_scale: f64,
    /// Run totals so far, for `require("engine").metric` in teardown (main thread only).
    pub snapshots: Option<crate::metrics::SnapshotRequester>,
    /// `--unsafe-lua`: the whole standard library, programs and file writes included.
    pub unsafe_lua: bool,
    /// Bytes this state's Lua heap may use (`--max-memory` split between the states).
    pub memory_limit: usize,
}

/// A state's HTTP side, set once the run's options are resolved (init code cannot send).
pub struct Http {
    pub settings: Settings,
    /// The worker's pool (every VU's under the shared policy).
    pub client: Client,
}

/// One per Lua state (worker, or the main thread for setup/teardown).
pub struct WorkerCtx {
    pub cfg: ScriptConfig,
    pub buffer: RefCell<Buffer>,
    pub http: OnceCell<Http>,
    /// Which coroutine this state is resuming, for the preemption watchdog.
    pub preempt: std::sync::Arc<super::preempt::Slot>,
    pub current: RefCell<Option<Rc<VuState>>>,
    /// The RNG of code that runs outside any VU (init code).
    pub init_rng: Stream,
    /// Iterations that ended in an error.
    pub errors: ErrorLog,
    /// Requests that got no response (status 0), as k6's "Request Failed" warnings.
    pub request_failures: ErrorLog,
    pub worker_index: usize,
    /// Every tag set recorded from this state, by a hash of what it is made of.
    pub tag_cache: RefCell<crate::fasthash::FastMap<u64, TagSetId>>,
    /// Every VU's `sleep`, in one heap with one timer (see `exec::SleepQueue`).
    pub sleeps: Rc<crate::exec::SleepQueue>,
    /// `http.setResponseCallback`: the statuses that count as expected by default.
    pub response_callback: RefCell<super::modules::http::callback::Expected>,
}

impl WorkerCtx {
    pub fn vu(&self) -> Option<Rc<VuState>> {
        self.current.borrow().clone()
    }

    /// The HTTP side; VU code runs only after [`super::Script::connect`].
    pub fn http(&self) -> &Http {
        self.http
            .get()
            .expect("Script::connect runs before any VU code")
    }
}

/// One per VU. Small on purpose: a sleeping VU is mostly this, its coroutine and its stack.
pub struct VuState {
    /// VU numbers fit 32 bits (a million VUs take 1.7 GB); iterations do not.
    pub id_in_test: u32,
    pub id_in_instance: u32,
    /// `__ITER`: iterations this VU started, 0-based.
    pub iter: Cell<u64>,
    pub iter_in_scenario: Cell<u64>,
    pub iter_in_test: Cell<u64>,
    /// A `Cell`, not a `RefCell`: 8 bytes, read by [`VuState::scenario`].
    scenario: Cell<Option<Rc<ScenarioRun>>>,
    pub rng: Stream,
    /// The tag set of samples without user tags (scenario, group), cached until the group
    /// changes (groups change only through the methods below, which drop it).
    pub base_tags: Cell<Option<TagSetId>>,
    /// The jar, the groups and the VU's own pool, made on first use: a VU that only sleeps
    /// never needs them, and inline they were 80 of its bytes.
    extras: OnceCell<Box<Extras>>,
}

#[derive(Default)]
pub struct Extras {
    pub jar: RefCell<CookieJar>,
    /// Open groups: (path, started).
    groups: RefCell<Vec<(String, Instant)>>,
    /// The VU's own pool under the per-VU and per-iteration connection policies (boxed:
    /// few runs use their own pools, and a VU whose first cookie makes its extras should
    /// not carry the space).
    pub client: RefCell<Option<Box<Client>>>,
}

impl VuState {
    pub fn new(id_in_test: u32, id_in_instance: u32, seed: Option<u64>) -> VuState {
        VuState {
            id_in_test,
            id_in_instance,
            iter: Cell::new(0),
            iter_in_scenario: Cell::new(0),
            iter_in_test: Cell::new(0),
            scenario: Cell::new(None),
            rng: Stream::new(vu_rng(seed, id_in_test)),
            base_tags: Cell::new(None),
            extras: OnceCell::new(),
        }
    }

    /// The scenario this VU runs (none in setup and teardown).
    pub fn scenario(&self) -> Option<Rc<ScenarioRun>> {
        let sc = self.scenario.take();
        self.scenario.set(sc.clone());
        sc
    }

    pub fn set_scenario(&self, sc: Rc<ScenarioRun>) {
        self.scenario.set(Some(sc));
    }

    /// The jar, groups and own pool, made now if this is their first use.
    pub fn extras(&self) -> &Extras {
        self.extras.get_or_init(Box::default)
    }

    pub fn jar(&self) -> &RefCell<CookieJar> {
        &self.extras().jar
    }

    /// Empties the jar, if it was ever used.
    pub fn clear_jar(&self) {
        if let Some(x) = self.extras.get() {
            x.jar.borrow_mut().clear();
        }
    }

    /// Drops the VU's own pool, if it has one (its connections close).
    pub fn drop_own_pool(&self) {
        if let Some(x) = self.extras.get() {
            x.client.borrow_mut().take();
        }
    }

    /// k6's group tag: "" at the top, "::a::b" inside nested groups.
    pub fn group_path(&self) -> String {
        let Some(x) = self.extras.get() else {
            return String::new();
        };
        x.groups
            .borrow()
            .last()
            .map(|g| g.0.clone())
            .unwrap_or_default()
    }

    /// Enters a group: `path` is the new group path. The cached base tag set goes with it.
    pub fn push_group(&self, path: String) {
        self.extras()
            .groups
            .borrow_mut()
            .push((path, Instant::now()));
        self.base_tags.set(None);
    }

    /// Leaves the innermost group: its path and when it was entered.
    pub fn pop_group(&self) -> Option<(String, Instant)> {
        let left = self.extras.get()?.groups.borrow_mut().pop();
        if left.is_some() {
            self.base_tags.set(None);
        }
        left
    }

    /// Back at the top level, as every iteration starts (one cut inside a group left its
    /// path behind).
    pub fn leave_all_groups(&self) {
        let Some(x) = self.extras.get() else {
            return;
        };
        let mut groups = x.groups.borrow_mut();
        if !groups.is_empty() {
            groups.clear();
            self.base_tags.set(None);
        }
    }

    pub fn scenario_name(&self) -> String {
        self.scenario().map(|s| s.name.clone()).unwrap_or_default()
    }
}

/// A request reads the VU's jar only if it was made, and makes it for the first cookie.
impl Jar for VuState {
    fn existing(&self) -> Option<&RefCell<CookieJar>> {
        self.extras.get().map(|x| &x.jar)
    }

    fn get(&self) -> &RefCell<CookieJar> {
        self.jar()
    }
}

/// A VU's random stream: from the seed and its global number only, so a run repeats
/// exactly however it is split across workers; otherwise from a per-thread stream the OS
/// seeded once (a `getrandom` call per VU was a tenth of starting a million VUs).
pub fn vu_rng(seed: Option<u64>, id_in_test: u32) -> WyRand {
    thread_local! {
        static SEEDS: Stream = Stream::new(WyRand::from_os_rng());
    }
    match seed {
        Some(s) => {
            WyRand::seed_from_u64(s ^ u64::from(id_in_test).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        }
        None => SEEDS.with(|s| s.with(|r| WyRand::seed_from_u64(r.next_u64()))),
    }
}

/// Rate-limits error lines so thousands of failing VUs do not flood the terminal: at most
/// `PER_WINDOW` lines per second per worker, the rest counted and reported as "N more
/// {what} were not printed".
pub struct ErrorLog {
    what: &'static str,
    window: Cell<Option<Instant>>,
    in_window: Cell<u32>,
    suppressed: Cell<u64>,
}

const PER_WINDOW: u32 = 5;

impl ErrorLog {
    /// `what` names the lines in plural ("iteration errors", "request failures").
    pub fn new(what: &'static str) -> Self {
        ErrorLog {
            what,
            window: Cell::new(None),
            in_window: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }

    /// Whether this line may be printed now.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        match self.window.get() {
            Some(start) if now.duration_since(start).as_secs() < 1 => {
                if self.in_window.get() >= PER_WINDOW {
                    self.suppressed.set(self.suppressed.get() + 1);
                    return false;
                }
                self.in_window.set(self.in_window.get() + 1);
            }
            _ => {
                self.report_suppressed();
                self.window.set(Some(now));
                self.in_window.set(1);
            }
        }
        true
    }

    /// Prints how many lines were held back since the last report, if any.
    pub fn report_suppressed(&self) {
        let n = self.suppressed.replace(0);
        if n > 0 {
            eprintln!("WARN  {n} more {} were not printed", self.what);
        }
    }
}
