//! A VU's loop: iterate while the executor wants it, count outcomes, and be interruptible.
//!
//! The loop is a [`Runner`], not a task. It steps its VU ([`Vu::advance`]) until the VU
//! sleeps, ends its loop, or waits for a request. A sleeping VU is parked in the worker's
//! [`SleepQueue`], whose server steps it again when due: a sleeping VU costs its heap entry,
//! not a tokio task and its future (~640 bytes each of 100,000 idle VUs). A VU that waits for
//! a request gets a task for as long as it goes on waiting; the task ends when it sleeps.

use super::shutdown::{RunState, Stop};
use super::sleeps::Parked;
use super::{Input, Next, ScenarioRun, Vu};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};
use tokio::task::AbortHandle;

/// Iterations one runner runs back to back without a wait before it yields to the worker's
/// other tasks (an iteration that never waits would otherwise hold the worker).
const STREAK_MAX: u32 = 32;

/// The VU loops of one executor on one worker: how many go on, and a way to stop them.
pub struct VuSet {
    inner: Rc<SetInner>,
}

/// What the loops of a set share (kept here, not in each loop: 100,000 loops).
struct SetInner {
    scenario: Rc<ScenarioRun>,
    run: Arc<RunState>,
    live: Cell<usize>,
    waiter: RefCell<Option<Waker>>,
    members: RefCell<Vec<Rc<dyn Member>>>,
}

impl SetInner {
    fn one_ended(&self) {
        self.live.set(self.live.get() - 1);
        if self.live.get() == 0 {
            if let Some(w) = self.waiter.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

impl VuSet {
    pub fn new(scenario: Rc<ScenarioRun>, run: Arc<RunState>) -> VuSet {
        VuSet {
            inner: Rc::new(SetInner {
                scenario,
                run,
                live: Cell::new(0),
                waiter: RefCell::new(None),
                members: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Resolves when every loop of the set has ended.
    pub async fn all_ended(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.live.get() == 0 {
                Poll::Ready(())
            } else {
                *self.inner.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Interrupts every loop still going (their iterations count as interrupted).
    pub fn stop_all(&self) {
        let members = std::mem::take(&mut *self.inner.members.borrow_mut());
        for m in members {
            m.stop();
        }
    }

    fn add(&self, m: Rc<dyn Member>) {
        self.inner.live.set(self.inner.live.get() + 1);
        let mut members = self.inner.members.borrow_mut();
        // ramping-vus starts a new loop each time it takes a VU back: forget ended ones.
        if members.len() >= 64 && members.len() >= 2 * self.inner.live.get() {
            members.retain(|m| !m.ended());
        }
        members.push(m);
    }
}

/// A set dropped unfinished (its executor's future dropped) stops its loops, as dropping
/// a JoinSet aborts its tasks: their `vus` and interrupted iterations are counted.
impl Drop for VuSet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A loop as its set and its handle see it.
trait Member {
    fn stop(&self);
    fn ended(&self) -> bool;
}

/// Handle on a running VU loop.
pub struct VuTask {
    runner: Rc<dyn Member>,
}

impl VuTask {
    /// Starts the loop (on the worker's LocalSet). `want` is asked before every iteration;
    /// the loop ends when it says no or the run stops.
    pub fn spawn<V: Vu + 'static>(
        set: &mut VuSet,
        vu: Rc<RefCell<V>>,
        want: impl Fn() -> bool + 'static,
    ) -> VuTask {
        set.inner.run.gauges.active.fetch_add(1, Ordering::Relaxed);
        let runner = Rc::new(Runner {
            vu,
            want,
            set: set.inner.clone(),
            state: Cell::new(State::Stepping),
            busy: Cell::new(false),
            streak: Cell::new(0),
        });
        set.add(runner.clone());
        runner.go(None);
        VuTask { runner }
    }

    pub fn is_running(&self) -> bool {
        !self.runner.ended()
    }

    /// Interrupts the VU mid-iteration (the iteration counts as interrupted).
    pub fn abort(&self) {
        self.runner.stop();
    }
}

#[derive(Default)]
enum State {
    /// Being stepped, by whoever started or resumed it.
    Stepping,
    /// Its task waits for the VU's request (or lets others run).
    Task(AbortHandle),
    /// In the sleep queue.
    Parked,
    #[default]
    Ended,
}

/// What a runner waits for in its task.
enum Cont<R> {
    Wait(Pin<Box<dyn Future<Output = R>>>),
    /// Let the worker's other tasks run, then start the next iteration.
    Yield,
}

/// Generic over its `want` closure, held inline: a boxed one was an allocation per VU.
/// 64-80 bytes with its `Rc`: the scenario and the run are the set's.
struct Runner<V: Vu, W> {
    vu: Rc<RefCell<V>>,
    want: W,
    set: Rc<SetInner>,
    /// A `Cell` (replaced, never borrowed): 8 bytes less than a `RefCell`.
    state: Cell<State>,
    /// In an iteration: ending now interrupts it.
    busy: Cell<bool>,
    /// Iterations ended back to back without a wait.
    streak: Cell<u32>,
}

impl<V: Vu + 'static, W: Fn() -> bool + 'static> Runner<V, W> {
    /// Steps the VU from `input` (none: the next iteration, if wanted); if it must wait,
    /// gives it a task for the wait.
    fn go(self: &Rc<Self>, input: Option<Input<'_, V::Reply>>) {
        if let Some(cont) = self.step(input) {
            let me = self.clone();
            let task = tokio::task::spawn_local(async move { me.in_task(cont).await });
            self.state.set(State::Task(task.abort_handle()));
        }
    }

    /// A wait, then steps, until the VU parks or its loop ends.
    async fn in_task(self: Rc<Self>, mut cont: Cont<V::Reply>) {
        loop {
            let input = match cont {
                Cont::Wait(reply) => Some(Input::Reply(reply.await)),
                Cont::Yield => {
                    tokio::task::yield_now().await;
                    None
                }
            };
            match self.step(input) {
                Some(next) => cont = next,
                None => return,
            }
        }
    }

    /// Runs the VU until it parks (queued to be resumed), its loop ends, or it must wait
    /// (returned).
    fn step(self: &Rc<Self>, mut input: Option<Input<'_, V::Reply>>) -> Option<Cont<V::Reply>> {
        if self.ended() {
            return None;
        }
        let mut vu = self.vu.borrow_mut();
        loop {
            let next = match input.take() {
                Some(input) => vu.advance(input),
                None => {
                    if !((self.want)() && self.set.run.stop_level() == Stop::Running) {
                        drop(vu);
                        self.end(false);
                        return None;
                    }
                    self.busy.set(true);
                    vu.advance(Input::Start(&self.set.scenario))
                }
            };
            match next {
                Next::Done(outcome) => {
                    self.busy.set(false);
                    self.set.run.record(outcome);
                    self.streak.set(self.streak.get() + 1);
                    if self.streak.get() >= STREAK_MAX {
                        self.streak.set(0);
                        return Some(Cont::Yield);
                    }
                }
                Next::Sleep(due) => {
                    self.streak.set(0);
                    let sleeps = vu.sleeps().clone();
                    drop(vu);
                    self.state.set(State::Parked);
                    // Its set owns it; the queue only finds it if it still lives.
                    let weak: std::rc::Weak<Self> = Rc::downgrade(self);
                    sleeps.park(due, weak);
                    return None;
                }
                Next::Wait(reply) => {
                    self.streak.set(0);
                    return Some(Cont::Wait(reply));
                }
            }
        }
    }

    /// The loop is over: `vus` goes down, an iteration cut short counts as interrupted.
    /// `abort` also drops its task, if any (when stopped from outside).
    fn end(&self, abort: bool) {
        let was = self.state.replace(State::Ended);
        match was {
            State::Ended => return,
            State::Task(task) if abort => task.abort(),
            _ => {}
        }
        self.set.run.gauges.active.fetch_sub(1, Ordering::Relaxed);
        if self.busy.replace(false) {
            self.set.run.count(false);
        }
        self.set.one_ended();
    }
}

impl<V: Vu + 'static, W: Fn() -> bool + 'static> Member for Runner<V, W> {
    fn stop(&self) {
        self.end(true);
    }

    fn ended(&self) -> bool {
        let state = self.state.take();
        let ended = matches!(state, State::Ended);
        self.state.set(state);
        ended
    }
}

impl<V: Vu + 'static, W: Fn() -> bool + 'static> Parked for Runner<V, W> {
    fn resume(self: Rc<Self>, due: tokio::time::Instant) {
        // Stopped while it slept: its entry outlived it.
        match self.state.replace(State::Stepping) {
            State::Parked => {}
            other => {
                self.state.set(other);
                return;
            }
        }
        self.go(Some(Input::Woke(due)));
    }
}
