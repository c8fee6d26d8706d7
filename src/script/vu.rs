//! Running Lua VUs: the driver that resumes a VU coroutine and serves what it yields
//! (sleep, HTTP), and the factory that creates VUs on a worker.

use super::context::{VuState, WorkerCtx};
use super::errors::error_text;
use super::intent::{self, Intent, Reply};
use super::modules::http::request::{read_request, Prepared};
use super::modules::http::{client_for, failures, metrics, response};
use super::preempt;
use super::stack::Slot;
use super::tag_cache;
use crate::exec::{Input, Next, Outcome, ScenarioRun, SleepQueue, Vu, VuFactory};
use crate::http::{Response, ResponseType};
use mlua::thread::ThreadStatus;
use mlua::{Function, Lua, RegistryKey, Table, Thread, Value};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What a worker's VUs share: the Lua state, its context and the functions they call.
pub struct Shared {
    pub lua: Lua,
    pub ctx: Rc<WorkerCtx>,
    pub vu_main: VuBody,
    /// The exec function of each scenario, by scenario index.
    pub exec_fns: Vec<Function>,
    /// setup()'s return value in the registry, one copy per worker: the argument of every
    /// iteration. VUs that have it are resumed without mlua (`intent::resume_direct`, which
    /// drops return values); the VU of setup, teardown and handleSummary has none (their
    /// return values matter, and each call gets its own argument).
    pub data_slot: Option<RegistryKey>,
}

/// The prelude's `describe_error`, which the driver calls on the error of a VU coroutine
/// that died (see `intent::resume`). The coroutine runs the iteration's function itself.
#[derive(Clone)]
pub struct VuBody {
    pub describe: Rc<RegistryKey>,
    /// What a new coroutine is created with (any function: each iteration resets it to its
    /// own).
    pub placeholder: Function,
}

/// A VU: its coroutine and its state.
pub struct LuaVu {
    shared: Rc<Shared>,
    thread: Thread,
    state: Rc<VuState>,
    /// When the current iteration started (for `iteration_duration`).
    started: Mark,
}

/// An optional instant in 8 bytes: nanoseconds after the run started, plus one (0: none).
/// As an `Option<Instant>` it took 16.
struct Mark(Cell<u64>);

impl Mark {
    fn none() -> Mark {
        Mark(Cell::new(0))
    }

    fn set(&self, base: Instant, at: Instant) {
        let after = at.saturating_duration_since(base).as_nanos();
        self.0.set(u64::try_from(after).unwrap_or(u64::MAX - 1) + 1);
    }

    fn take(&self, base: Instant) -> Option<Instant> {
        match self.0.replace(0) {
            0 => None,
            n => Some(base + Duration::from_nanos(n - 1)),
        }
    }
}

impl LuaVu {
    pub fn new(shared: Rc<Shared>, state: Rc<VuState>) -> mlua::Result<LuaVu> {
        let thread = shared
            .lua
            .create_thread(shared.vu_main.placeholder.clone())?;
        Ok(LuaVu {
            shared,
            thread,
            state,
            started: Mark::none(),
        })
    }

    /// Runs `f(data)` once on this VU (setup and teardown use it too), waiting in place.
    pub async fn call(&self, f: Function, data: Value) -> Result<Value, CallError> {
        let mut flow = self.settle(self.start(f, Reply::Start(data)));
        loop {
            flow = match flow {
                Flow::Done(result) => return call_result(result),
                Flow::Sleep(due) => {
                    self.shared.ctx.sleeps.sleep_until(due).await;
                    self.settle(self.woke(due))
                }
                Flow::Wait(reply) => {
                    let reply = reply.await;
                    self.settle(self.resume(reply))
                }
            }
        }
    }

    fn resume(&self, reply: Reply) -> Result<Step, String> {
        resume(&self.shared, &self.thread, &self.state, reply)
    }

    /// Its sleep is over: records how late (the generator's own lag: a busy worker wakes
    /// its VUs late, and a threshold on vu_sleep_lag fails the run for it), then goes on.
    fn woke(&self, due: tokio::time::Instant) -> Result<Step, String> {
        let late = tokio::time::Instant::now().saturating_duration_since(due);
        let ctx = &self.shared.ctx;
        let tags = tag_cache::base(ctx, &self.state);
        ctx.buffer.borrow_mut().add(
            ctx.cfg.builtins.vu_sleep_lag,
            tags,
            late.as_secs_f64() * 1000.0,
        );
        self.resume(Reply::Nothing)
    }

    /// Runs the coroutine on until it waits for something the driver does, or returns.
    fn settle(&self, mut step: Result<Step, String>) -> Flow {
        loop {
            step = match step {
                Err(e) => return Flow::Done(Err(e)),
                Ok(Step::Done(ok, value)) => return Flow::Done(Ok((ok, value))),
                Ok(Step::Sleep(secs)) if secs > 0.0 && secs.is_finite() => {
                    let due = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
                    return Flow::Sleep(due);
                }
                // A zero or invalid time only lets others run.
                Ok(Step::Sleep(_)) => return Flow::Wait(Box::pin(let_others_run())),
                Ok(Step::Wait(reply)) => return Flow::Wait(reply),
                Ok(Step::Fail(msg)) => self.resume(Reply::Failure(msg)),
            };
        }
    }

    /// Starts `f(data)` on the VU's coroutine. The same coroutine serves every iteration:
    /// after a return it only needs its stack cleared; one interrupted mid-way (its task
    /// dropped at a deadline) or dead of an error is closed first.
    fn start(&self, f: Function, data: Reply) -> Result<Step, String> {
        if self.thread.status() == ThreadStatus::Error {
            // Closing a coroutine that died gives its error back (Lua's lua_closethread),
            // which was reported already; the coroutine is reset all the same.
            let _ = self.thread.reset(f.clone());
        }
        self.thread.reset(f).map_err(|e| e.to_string())?;
        self.resume(data)
    }

    /// What an iteration does before its coroutine runs: scenario counters, a fresh cookie
    /// jar and group path, the per-iteration pool dropped.
    fn begin_iteration(&self, sc: &Rc<ScenarioRun>) {
        let st = &self.state;
        let same = st.scenario().is_some_and(|s| s.index == sc.index);
        if !same {
            st.set_scenario(sc.clone());
            st.iter_in_scenario.set(0);
            st.base_tags.set(None);
        }
        st.iter_in_test.set(
            sc.iterations_in_test
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let http = &self.shared.ctx.http().settings;
        if !http.no_cookies_reset {
            st.clear_jar();
        }
        if http.policy == crate::http::ConnectionPolicy::PerIteration {
            // Dropping the pool closes its connections: the next iteration dials anew.
            st.drop_own_pool();
        }
        st.leave_all_groups();
        // Now, not at the first sample: a VU's first wake from sleep is then no dearer than
        // its start (see `executors::pace_start`).
        tag_cache::base(&self.shared.ctx, st);
    }

    /// Counts the iteration, logs its error, records `iterations` and `iteration_duration`.
    fn end_iteration(&self, result: Result<Value, CallError>, started: Instant) -> Outcome {
        let st = &self.state;
        let ctx = &self.shared.ctx;
        st.iter.set(st.iter.get() + 1);
        st.iter_in_scenario.set(st.iter_in_scenario.get() + 1);
        // An iteration that ran to its end counts, whether it returned or threw (k6 v1.1
        // counts fail() and exceptions as complete iterations); an abort interrupts it.
        let outcome = match result {
            Ok(_) => Outcome::Completed,
            Err(CallError::Abort(msg)) => return Outcome::Aborted(msg),
            Err(CallError::Script(msg)) | Err(CallError::Engine(msg)) => {
                if ctx.errors.allow() {
                    let text = tidy_traceback(&msg);
                    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
                    let secs = ctx.cfg.started.elapsed().as_secs();
                    eprintln!(
                        "ERRO[{secs:04}] {first}  vu={} source=stacktrace",
                        st.id_in_test
                    );
                    if !rest.is_empty() {
                        eprintln!("\t{rest}");
                    }
                }
                Outcome::Failed
            }
        };
        let b = ctx.cfg.builtins;
        let tags = tag_cache::base(ctx, st);
        let mut buf = ctx.buffer.borrow_mut();
        buf.add(b.iterations, tags, 1.0);
        buf.add(
            b.iteration_duration,
            tags,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        outcome
    }
}

/// Why a call into Lua failed.
#[derive(Debug)]
pub enum CallError {
    /// The script raised an error: message with traceback.
    Script(String),
    /// `exec.test.abort(msg)`.
    Abort(String),
    /// The engine could not drive the coroutine (a stray yield, a dead coroutine).
    Engine(String),
}

fn classify_error(err: Value) -> CallError {
    if let Value::Table(t) = &err {
        if let Ok(Some(msg)) = t.get::<Option<String>>("__abort") {
            return CallError::Abort(msg);
        }
    }
    CallError::Script(match err {
        Value::String(s) => s.to_string_lossy(),
        Value::Error(e) => error_text(&e),
        other => other.to_string().unwrap_or_else(|_| format!("{other:?}")),
    })
}

impl Vu for LuaVu {
    type Reply = Reply;

    fn advance(&mut self, input: Input<'_, Reply>) -> Next<Reply> {
        let step = match input {
            Input::Start(sc) => {
                self.begin_iteration(sc);
                let f = self.shared.exec_fns[sc.index].clone();
                let data = match &self.shared.data_slot {
                    Some(slot) => Reply::Registered(slot.id()),
                    None => Reply::Start(Value::Nil),
                };
                self.started
                    .set(self.shared.ctx.cfg.started, Instant::now());
                self.start(f, data)
            }
            Input::Woke(due) => self.woke(due),
            Input::Reply(reply) => self.resume(reply),
        };
        match self.settle(step) {
            Flow::Done(result) => {
                let base = self.shared.ctx.cfg.started;
                let started = self.started.take(base).unwrap_or_else(Instant::now);
                Next::Done(self.end_iteration(call_result(result), started))
            }
            Flow::Sleep(due) => Next::Sleep(due),
            Flow::Wait(reply) => Next::Wait(reply),
        }
    }

    fn sleeps(&self) -> &Rc<SleepQueue> {
        &self.shared.ctx.sleeps
    }
}

/// Where a VU's coroutine stopped, once it waits for the driver.
enum Flow {
    /// The call ended: (ok, return value or error), or the engine could not drive it.
    Done(Result<(bool, Value), String>),
    Sleep(tokio::time::Instant),
    Wait(Pin<Box<dyn Future<Output = Reply>>>),
}

async fn let_others_run() -> Reply {
    tokio::task::yield_now().await;
    Reply::Nothing
}

fn call_result(r: Result<(bool, Value), String>) -> Result<Value, CallError> {
    match r {
        Ok((true, v)) => Ok(v),
        Ok((false, err)) => Err(classify_error(err)),
        Err(e) => Err(CallError::Engine(e)),
    }
}

/// Drops the engine's own frames from a traceback; what is left points at the script.
pub fn tidy_traceback(msg: &str) -> String {
    msg.lines()
        .filter(|l| {
            !l.contains("prelude")
                && !l.contains("sandbox:")
                && !l.contains("[C]: in ?")
                && !l.contains("in function 'xpcall'")
        })
        .collect::<Vec<_>>()
        .join("\n\t")
}

/// What the coroutine stopped for, after one resume.
enum Step {
    /// The iteration ended: (ok, return value or error).
    Done(bool, Value),
    /// Seconds to sleep, already divided by the time scale.
    Sleep(f64),
    /// A request (or the watchdog's turn for the rest of the worker); its reply resumes
    /// the coroutine. Boxed: a VU waiting for it carries a pointer, not a request.
    Wait(Pin<Box<dyn Future<Output = Reply>>>),
    /// A wrong call: resume at once with this error, raised at the script's line.
    Fail(String),
}

/// Resumes the VU coroutine with `reply` and turns what it yields into a [`Step`].
fn resume(
    sh: &Rc<Shared>,
    thread: &Thread,
    st: &Rc<VuState>,
    reply: Reply,
) -> Result<Step, String> {
    *sh.ctx.current.borrow_mut() = Some(st.clone());
    sh.ctx.preempt.enter(thread.state());
    // SAFETY: the VU's own coroutine, not running (the driver resumes it from outside Lua).
    let r = unsafe {
        let (co, describe) = (thread.state(), &sh.vu_main.describe);
        match sh.data_slot {
            Some(_) => intent::resume_direct(&sh.lua, co, describe, reply),
            None => intent::resume(&sh.lua, co, describe, reply),
        }
    };
    let hooked = sh.ctx.preempt.leave(thread.state());
    *sh.ctx.current.borrow_mut() = None;
    if hooked {
        // The watchdog made it yield: let the runtime run, then go on where it was.
        if matches!(r, Ok(Intent::Foreign(_))) && thread.status() == ThreadStatus::Resumable {
            return Ok(Step::Wait(Box::pin(let_others_run())));
        }
        preempt::unhook(thread.state());
    }
    Ok(match r.map_err(|e| error_text(&e))? {
        Intent::Foreign(value) if thread.status() == ThreadStatus::Finished => {
            Step::Done(true, value)
        }
        Intent::Raised(error) => Step::Done(false, error),
        Intent::Sleep(secs) => Step::Sleep(secs / sh.ctx.cfg.time_scale),
        Intent::Http(Ok(p)) => {
            Step::Wait(Box::pin(request(sh.clone(), st.clone(), p, |r| match r {
                Ok(res) => Reply::Response(Box::new(res)),
                Err(thrown) => Reply::Failure(thrown),
            })))
        }
        Intent::Http(Err(msg)) => Step::Fail(msg),
        Intent::Batch(Some(list)) => {
            let (sh, st) = (sh.clone(), st.clone());
            Step::Wait(Box::pin(async move {
                match batch_call(&sh, &st, list).await {
                    Ok(t) => Reply::Value(Value::Table(t)),
                    Err(msg) => Reply::Failure(msg),
                }
            }))
        }
        Intent::Batch(None) => Step::Fail("http.batch: expected a list of requests".into()),
        Intent::Unknown(op) => return Err(format!("unknown engine operation {op}")),
        Intent::Foreign(_) => {
            return Err(
                "coroutine.yield() was called outside of a coroutine the script created".into(),
            )
        }
    })
}

/// One request as `http.*` makes it: send (following redirects), record every hop, warn
/// about a failure. Gives `reply(the last hop, or under `throw` the error to raise)`.
/// A plain fn returning an async block, not an async fn: an async fn stores each argument
/// twice (rust-lang/rust#62958), and this future is in every request in flight.
fn request<R: 'static>(
    sh: Rc<Shared>,
    st: Rc<VuState>,
    mut p: Prepared,
    reply: fn(Result<Response, String>) -> R,
) -> impl Future<Output = R> + 'static {
    let settings = &sh.ctx.http().settings;
    if let Some(rt) = p.response_type {
        p.spec.response_type = rt;
    } else if settings.discard_response_bodies {
        p.spec.response_type = ResponseType::None;
    }
    if let (false, Some(max)) = (p.redirects_given, settings.max_redirects) {
        p.spec.max_redirects = max;
    }
    async move {
        let mut hops = client_for(&sh.ctx, &st).send(&p.spec, &*st).await;
        for hop in &hops {
            metrics::record(&sh.ctx, &st, hop, &p.user_tags, p.expected.as_ref());
        }
        reply(
            failures::notice(&sh.ctx, &p, &hops)
                .map(|()| hops.pop().expect("a request has at least one hop")),
        )
    }
}

async fn batch_call(sh: &Rc<Shared>, st: &Rc<VuState>, list: Table) -> Result<Table, String> {
    let mut calls = Vec::new();
    for item in list.sequence_values::<Table>() {
        let item = item.map_err(|e| e.to_string())?;
        let get = |k: &str| item.get::<Value>(k).map_err(|e| e.to_string());
        let method = match get("method")? {
            Value::String(s) => s.to_string_lossy().to_uppercase(),
            _ => "GET".into(),
        };
        let args = (method, get("url")?, get("body")?, get("params")?);
        // The same reader as a single request's, on the values pushed onto a stack.
        let mut prepared = None;
        unsafe {
            sh.lua
                .exec_raw::<()>(args, |state| {
                    let at = |i| Slot::new(state, i);
                    prepared = Some(read_request(at(1), at(2), at(3), at(4)));
                })
                .map_err(|e| e.to_string())?;
        }
        let p = prepared.expect("exec_raw ran the reader")?;
        calls.push(request(sh.clone(), st.clone(), p, |r| r));
    }
    // Each response goes back as the list of its parts; the prelude builds the tables.
    let results = crate::exec::join_all(calls).await;
    let out = sh.lua.create_table().map_err(|e| e.to_string())?;
    for r in results {
        let r = r?;
        let parts = response::to_lua_parts(&sh.lua, r).map_err(|e| e.to_string())?;
        let list = sh
            .lua
            .create_sequence_from(parts)
            .map_err(|e| e.to_string())?;
        out.push(list).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Creates the VUs of one worker.
pub struct LuaFactory {
    pub shared: Rc<Shared>,
    /// The `{scenario}` tag set by scenario index: executor-level samples (dropped
    /// iterations, arrival-rate start lag, one per started iteration) look it up once.
    pub scenario_tags: std::cell::RefCell<Vec<Option<crate::metrics::TagSetId>>>,
}

impl LuaFactory {
    fn scenario_tags(&self, scenario: &ScenarioRun) -> crate::metrics::TagSetId {
        let mut cache = self.scenario_tags.borrow_mut();
        if cache.len() <= scenario.index {
            cache.resize(scenario.index + 1, None);
        }
        *cache[scenario.index].get_or_insert_with(|| {
            tag_cache::exact(
                &self.shared.ctx,
                vec![("scenario".into(), scenario.name.clone())],
            )
        })
    }
}

impl VuFactory for LuaFactory {
    type V = LuaVu;

    fn create(&self, id_in_test: u64, _scenario: &ScenarioRun) -> Result<LuaVu, String> {
        let ctx = &self.shared.ctx;
        ctx.cfg
            .run
            .gauges
            .max
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = u32::try_from(id_in_test).map_err(|_| format!("VU {id_in_test}: too many VUs"))?;
        let state = Rc::new(VuState::new(id, id, ctx.cfg.seed));
        LuaVu::new(self.shared.clone(), state)
            .map_err(|e| format!("cannot create VU {id_in_test}: {e}"))
    }

    fn dropped(&self, scenario: &ScenarioRun, count: u64) {
        let ctx = &self.shared.ctx;
        let tags = self.scenario_tags(scenario);
        ctx.buffer
            .borrow_mut()
            .add(ctx.cfg.builtins.dropped_iterations, tags, count as f64);
    }

    fn started_late(&self, scenario: &ScenarioRun, late: Duration) {
        let ctx = &self.shared.ctx;
        let tags = self.scenario_tags(scenario);
        ctx.buffer.borrow_mut().add(
            ctx.cfg.builtins.vu_sleep_lag,
            tags,
            late.as_secs_f64() * 1000.0,
        );
    }
}
