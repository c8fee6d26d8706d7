//! Running Lua VUs: the driver that resumes a VU coroutine and serves what it yields
//! (sleep, HTTP), and the factory that creates VUs on a worker.

use super::context::{VuState, WorkerCtx};
use super::errors::error_text;
use super::intent::{Intent, Reply};
use super::modules::http::request::{read_request, Prepared};
use super::modules::http::{client_for, failures, metrics, response};
use super::preempt;
use super::stack::Slot;
use super::tag_cache;
use crate::exec::{Outcome, ScenarioRun, Vu, VuFactory};
use crate::http::{Response, ResponseType};
use mlua::thread::ThreadStatus;
use mlua::{Function, Lua, Table, Thread, Value};
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
    /// setup()'s return value, one copy per worker.
    pub data: Value,
}

/// What every VU coroutine runs: the prelude's `xpcall` and its message handler. The driver
/// starts each iteration as `xpcall(fn, on_error, data)` on the VU's one coroutine.
#[derive(Clone)]
pub struct VuBody {
    pub xpcall: Function,
    pub on_error: Function,
}

/// A VU: its coroutine and its state.
pub struct LuaVu {
    shared: Rc<Shared>,
    thread: Thread,
    state: Rc<VuState>,
}

impl LuaVu {
    pub fn new(shared: Rc<Shared>, state: Rc<VuState>) -> mlua::Result<LuaVu> {
        let thread = shared.lua.create_thread(shared.vu_main.xpcall.clone())?;
        Ok(LuaVu {
            shared,
            thread,
            state,
        })
    }

    /// Runs `f(data)` once on this VU (setup and teardown use it too).
    pub async fn call(&self, f: Function, data: Value) -> Result<Value, CallError> {
        let first = self.start(f, data);
        call_result(drive(&self.shared, &self.thread, &self.state, first).await)
    }

    /// Starts `xpcall(f, on_error, data)` on the VU's coroutine. The same coroutine serves
    /// every iteration: after a return it only needs its stack cleared; one interrupted
    /// mid-way (its task dropped at a deadline) is closed first.
    fn start(&self, f: Function, data: Value) -> Result<Step<'_>, String> {
        let body = &self.shared.vu_main;
        self.thread
            .reset(body.xpcall.clone())
            .map_err(|e| e.to_string())?;
        let on_error = Value::Function(body.on_error.clone());
        let start = Reply::Start(Value::Function(f), on_error, data);
        resume(&self.shared, &self.thread, &self.state, start)
    }

    /// What an iteration does before its coroutine runs: scenario counters, a fresh cookie
    /// jar and group path, the per-iteration pool dropped.
    fn begin_iteration(&self, sc: &Rc<ScenarioRun>) {
        let st = &self.state;
        let same = st
            .scenario
            .borrow()
            .as_ref()
            .is_some_and(|s| s.index == sc.index);
        if !same {
            *st.scenario.borrow_mut() = Some(sc.clone());
            st.iter_in_scenario.set(0);
            st.base_tags.set(None);
        }
        st.iter_in_test.set(
            sc.iterations_in_test
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let http = &self.shared.ctx.http().settings;
        if !http.no_cookies_reset {
            st.jar.borrow_mut().clear();
        }
        if http.policy == crate::http::ConnectionPolicy::PerIteration {
            // Dropping the pool closes its connections: the next iteration dials anew.
            st.client.borrow_mut().take();
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
    /// Runs up to the iteration's first wait here, not in the future: a VU's task is as large
    /// as its future, and an idle VU is mostly its task. (A future made here and awaited in
    /// an async block would be stored twice: once captured, once awaited.)
    fn iterate(&mut self, sc: &Rc<ScenarioRun>) -> impl Future<Output = Outcome> {
        let this = &*self;
        this.begin_iteration(sc);
        let f = this.shared.exec_fns[sc.index].clone();
        let data = this.shared.data.clone();
        let started = Instant::now();
        let first = this.start(f, data);
        iteration(this, first, started)
    }
}

/// The rest of an iteration once its coroutine first waited.
async fn iteration<'a>(
    vu: &'a LuaVu,
    first: Result<Step<'a>, String>,
    started: Instant,
) -> Outcome {
    let result = call_result(drive(&vu.shared, &vu.thread, &vu.state, first).await);
    vu.end_iteration(result, started)
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
enum Step<'a> {
    /// The iteration ended: (ok, return value or error).
    Done(bool, Value),
    /// Seconds to sleep, already divided by the time scale.
    Sleep(f64),
    /// The calls are boxed so the VU's task carries a pointer, not a request.
    Http(Pin<Box<dyn Future<Output = Result<Response, String>> + 'a>>),
    Batch(Pin<Box<dyn Future<Output = Result<Table, String>> + 'a>>),
    /// A wrong call: resume at once with this error, raised at the script's line.
    Fail(String),
    /// The watchdog made it yield: let the runtime run, then go on where it was.
    Preempted,
}

/// Resumes the VU coroutine with `reply` and turns what it yields into a [`Step`].
fn resume<'a>(
    sh: &'a Shared,
    thread: &Thread,
    st: &'a Rc<VuState>,
    reply: Reply,
) -> Result<Step<'a>, String> {
    *sh.ctx.current.borrow_mut() = Some(st.clone());
    sh.ctx.preempt.enter(thread.state());
    let r = thread.resume::<Intent>(reply);
    let hooked = sh.ctx.preempt.leave();
    *sh.ctx.current.borrow_mut() = None;
    if hooked {
        if matches!(r, Ok(Intent::Foreign)) && thread.status() == ThreadStatus::Resumable {
            return Ok(Step::Preempted);
        }
        preempt::unhook(thread.state());
    }
    Ok(match r.map_err(|e| error_text(&e))? {
        Intent::Returned(ok, value) if thread.status() == ThreadStatus::Finished => {
            Step::Done(ok, value)
        }
        Intent::Sleep(secs) => Step::Sleep(secs / sh.ctx.cfg.time_scale),
        Intent::Http(Ok(p)) => Step::Http(Box::pin(exchange(sh, st, p))),
        Intent::Http(Err(msg)) => Step::Fail(msg),
        Intent::Batch(Some(list)) => Step::Batch(Box::pin(batch_call(sh, st, list))),
        Intent::Batch(None) => Step::Fail("http.batch: expected a list of requests".into()),
        Intent::Unknown(op) => return Err(format!("unknown engine operation {op}")),
        Intent::Foreign if thread.status() == ThreadStatus::Finished => {
            return Err("the VU coroutine ended unexpectedly".into())
        }
        Intent::Foreign | Intent::Returned(..) => {
            return Err(
                "coroutine.yield() was called outside of a coroutine the script created".into(),
            )
        }
    })
}

/// Serves each step of the VU coroutine until its iteration ends. Returns the iteration's
/// (ok, value-or-error). Nothing big is kept across an await (a reply is made after it):
/// this future is most of a sleeping VU's task.
async fn drive<'a>(
    sh: &'a Shared,
    thread: &'a Thread,
    st: &'a Rc<VuState>,
    mut step: Result<Step<'a>, String>,
) -> Result<(bool, Value), String> {
    loop {
        step = match &mut step {
            Err(e) => return Err(std::mem::take(e)),
            Ok(Step::Done(ok, value)) => return Ok((*ok, std::mem::replace(value, Value::Nil))),
            Ok(Step::Sleep(secs)) => {
                sleep(sh, st, *secs).await;
                resume(sh, thread, st, Reply::Nothing)
            }
            Ok(Step::Preempted) => {
                tokio::task::yield_now().await;
                resume(sh, thread, st, Reply::Nothing)
            }
            Ok(Step::Http(call)) => match call.as_mut().await {
                Ok(res) => resume(sh, thread, st, Reply::Response(Box::new(res))),
                Err(thrown) => resume(sh, thread, st, Reply::Failure(thrown)),
            },
            Ok(Step::Batch(call)) => match call.as_mut().await {
                Ok(t) => resume(sh, thread, st, Reply::Value(Value::Table(t))),
                Err(msg) => resume(sh, thread, st, Reply::Failure(msg)),
            },
            Ok(Step::Fail(msg)) => {
                let msg = std::mem::take(msg);
                resume(sh, thread, st, Reply::Failure(msg))
            }
        };
    }
}

/// `sleep(secs)` (already time-scaled); a zero or invalid time only lets others run.
async fn sleep(sh: &Shared, st: &Rc<VuState>, secs: f64) {
    if !(secs > 0.0 && secs.is_finite()) {
        tokio::task::yield_now().await;
        return;
    }
    let due = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    sh.ctx.sleeps.sleep_until(due).await;
    // The generator's own lag: a busy worker wakes its VUs late, and a threshold on
    // vu_sleep_lag fails the run for it.
    let late = tokio::time::Instant::now().saturating_duration_since(due);
    let tags = tag_cache::base(&sh.ctx, st);
    sh.ctx.buffer.borrow_mut().add(
        sh.ctx.cfg.builtins.vu_sleep_lag,
        tags,
        late.as_secs_f64() * 1000.0,
    );
}

/// One request as `http.*` makes it: send (following redirects), record every hop, warn
/// about a failure. Returns the last hop, or under `throw` the error to raise.
async fn exchange(sh: &Shared, st: &Rc<VuState>, mut p: Prepared) -> Result<Response, String> {
    let settings = &sh.ctx.http().settings;
    if let Some(rt) = p.response_type {
        p.spec.response_type = rt;
    } else if settings.discard_response_bodies {
        p.spec.response_type = ResponseType::None;
    }
    if let (false, Some(max)) = (p.redirects_given, settings.max_redirects) {
        p.spec.max_redirects = max;
    }
    let client = client_for(&sh.ctx, st);
    let mut hops = client.send(&p.spec, &st.jar).await;
    for hop in &hops {
        metrics::record(&sh.ctx, st, hop, &p.user_tags, p.expected.as_ref());
    }
    failures::notice(&sh.ctx, &p, &hops)?;
    Ok(hops.pop().expect("a request has at least one hop"))
}

async fn batch_call(sh: &Shared, st: &Rc<VuState>, list: Table) -> Result<Table, String> {
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
        calls.push(exchange(sh, st, p));
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
        let state = Rc::new(VuState::new(id_in_test, id_in_test, ctx.cfg.seed));
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
