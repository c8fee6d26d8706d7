//! A worker's VU sleeps: one binary heap of (due, sleeper), served by one local task that
//! waits on one tokio timer for the earliest.
//!
//! Why not a tokio `Sleep` per VU: tokio's timer wheel keeps a 1 s sleep in a 64 ms slot of
//! its second level, and when the slot comes due it moves every entry in it down a level in
//! one go. With 50,000 VUs looping `sleep(1)` a slot holds thousands of them: each worker
//! stalled 1-5 ms at every 64 ms boundary (perf), and every VU of the herd queued behind the
//! stall woke that much late (p99 oversleep 10-30 ms). The heap pops in due order, O(log n)
//! a sleep, nothing in bulk.
//!
//! An entry wakes a task ([`SleepQueue::sleep_until`]) or resumes a parked VU
//! ([`SleepQueue::park`]): a VU that sleeps between iterations' steps has no task at all, only
//! its entry here (see vu_task.rs). The server resumes parked VUs itself, a bounded number
//! per turn so that the rest of the worker (responses, other tasks) runs between them.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use tokio::time::Instant;

/// The sleeps of one worker (or of the main thread's setup/teardown).
pub struct SleepQueue {
    inner: RefCell<Inner>,
    /// Deadlines are kept as nanoseconds after this: 8 bytes in an entry instead of 16.
    epoch: Instant,
}

impl Default for SleepQueue {
    fn default() -> Self {
        SleepQueue {
            inner: RefCell::default(),
            epoch: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Reverse<Entry>>,
    /// The serving task, while one runs: its waker and the deadline its timer is set to.
    server: Option<Server>,
}

struct Server {
    waker: Option<Waker>,
    armed: Option<Instant>,
}

/// 24 bytes: a heap of 100,000 sleeping VUs holds 131,072 of them.
struct Entry {
    /// Nanoseconds after the queue's epoch.
    due: u64,
    /// Weak: a VU stopped while it slept is gone at once, not at its deadline (its VU holds
    /// the worker's Lua state, which holds this queue).
    then: Weak<dyn Parked>,
}

/// Something that sleeps without a task: the queue's server resumes it when due.
pub trait Parked {
    /// Called by the server, with the queue not borrowed: it may park again. `due` is when
    /// it asked to be resumed.
    fn resume(self: Rc<Self>, due: Instant);
}

/// A task's sleep, as a sleeper: resuming it wakes the task.
struct Waiter(RefCell<Option<Waker>>);

impl Parked for Waiter {
    fn resume(self: Rc<Self>, _: Instant) {
        if let Some(w) = self.0.borrow_mut().take() {
            w.wake();
        }
    }
}

/// Parked VUs resumed per turn of the server before it lets the worker's other tasks run.
const RESUMES_PER_TURN: usize = 64;

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

impl SleepQueue {
    /// Sleeps until `due` (tokio's clock, so a paused test clock drives it too). Must be
    /// polled on a `LocalSet`: the queue's server is a local task.
    pub fn sleep_until(self: &Rc<Self>, due: Instant) -> Sleep<'_> {
        Sleep {
            queue: self,
            due,
            waiter: None,
        }
    }

    /// How many sleeps wait (a dropped sleep stays until its deadline).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.borrow().heap.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resumes `what` at `due` (from the server's task; at once if due already, next turn).
    pub fn park(self: &Rc<Self>, due: Instant, what: Weak<dyn Parked>) {
        let mut inner = self.inner.borrow_mut();
        inner.heap.push(Reverse(Entry {
            due: self.nanos(due),
            then: what,
        }));
        match &mut inner.server {
            None => {
                inner.server = Some(Server {
                    waker: None,
                    armed: None,
                });
                drop(inner);
                tokio::task::spawn_local(serve(self.clone()));
            }
            // The server waits for a later deadline (or none): it re-arms for this one.
            Some(s) if s.armed.is_none_or(|armed| due < armed) => {
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
            Some(_) => {}
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        let after = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(after).unwrap_or(u64::MAX)
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + std::time::Duration::from_nanos(nanos)
    }

    /// Wakes every sleep due by `now` in due order and resumes up to [`RESUMES_PER_TURN`]
    /// parked VUs. Returns the next deadline, or `Err` when resumes are left for the next
    /// turn.
    fn fire(&self, now: Instant) -> Result<Option<Instant>, ()> {
        let mut resumed = 0;
        let now = self.nanos(now);
        loop {
            let entry = {
                let mut inner = self.inner.borrow_mut();
                match inner.heap.peek() {
                    None => return Ok(None),
                    Some(Reverse(top)) if top.due > now => return Ok(Some(self.instant(top.due))),
                    Some(_) if resumed == RESUMES_PER_TURN => return Err(()),
                    Some(_) => inner.heap.pop().expect("peeked").0,
                }
            };
            if let Some(sleeper) = entry.then.upgrade() {
                resumed += 1;
                sleeper.resume(self.instant(entry.due));
            }
        }
    }
}

/// The queue's one task: fires due sleeps, then waits on one tokio timer for the next
/// deadline or for a push of an earlier one.
async fn serve(queue: Rc<SleepQueue>) {
    let _gone = ServerGone(queue.clone());
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    std::future::poll_fn(|cx| loop {
        let Ok(next) = queue.fire(Instant::now()) else {
            // More VUs are due: the worker's other tasks get a turn first.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        let mut inner = queue.inner.borrow_mut();
        let server = inner.server.as_mut().expect("the server's own state");
        server.waker = Some(cx.waker().clone());
        server.armed = next;
        let Some(due) = next else {
            return Poll::<()>::Pending;
        };
        drop(inner);
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
    })
    .await
}

/// Clears the server's state when its task ends (its LocalSet dropped): the next push
/// starts another.
struct ServerGone(Rc<SleepQueue>);

impl Drop for ServerGone {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.0.inner.try_borrow_mut() {
            inner.server = None;
        }
    }
}

/// A VU's sleep. Dropped before its deadline, its entry stays in the heap until then and
/// finds nothing to wake.
pub struct Sleep<'a> {
    queue: &'a Rc<SleepQueue>,
    due: Instant,
    waiter: Option<Rc<Waiter>>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.due {
            return Poll::Ready(());
        }
        match &self.waiter {
            // Polled again before its time: the task's waker, in case it changed.
            Some(w) => *w.0.borrow_mut() = Some(cx.waker().clone()),
            None => {
                let w = Rc::new(Waiter(RefCell::new(Some(cx.waker().clone()))));
                let weak: Weak<Waiter> = Rc::downgrade(&w);
                self.queue.park(self.due, weak);
                self.waiter = Some(w);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Duration;

    fn local<F: Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn sleeps_wake_at_their_deadlines_in_due_order() {
        local(async {
            let q = Rc::new(SleepQueue::default());
            let t0 = Instant::now();
            let woke = Rc::new(RefCell::new(Vec::new()));
            let mut set = tokio::task::JoinSet::new();
            for ms in [300u64, 100, 200, 100, 50] {
                let (q, woke) = (q.clone(), woke.clone());
                set.spawn_local(async move {
                    q.sleep_until(t0 + Duration::from_millis(ms)).await;
                    woke.borrow_mut()
                        .push((ms, t0.elapsed().as_millis() as u64));
                });
            }
            while set.join_next().await.is_some() {}
            assert_eq!(
                *woke.borrow(),
                vec![(50, 50), (100, 100), (100, 100), (200, 200), (300, 300)]
            );
            assert!(q.is_empty());
        });
    }

    #[test]
    fn an_earlier_sleep_rearms_the_server() {
        local(async {
            let q = Rc::new(SleepQueue::default());
            let t0 = Instant::now();
            let late = {
                let q = q.clone();
                tokio::task::spawn_local(async move {
                    q.sleep_until(t0 + Duration::from_secs(10)).await;
                    t0.elapsed()
                })
            };
            tokio::task::yield_now().await;
            // The server now waits for 10 s; a 1 s sleep pushed after must still wake at 1 s.
            q.sleep_until(t0 + Duration::from_secs(1)).await;
            assert_eq!(t0.elapsed(), Duration::from_secs(1));
            assert_eq!(late.await.unwrap(), Duration::from_secs(10));
        });
    }

    #[test]
    fn a_past_deadline_is_ready_at_once_and_a_dropped_sleep_is_harmless() {
        local(async {
            let q = Rc::new(SleepQueue::default());
            let t0 = Instant::now();
            q.sleep_until(t0).await;
            assert!(q.is_empty(), "a due sleep never queues");
            let task = {
                let q = q.clone();
                tokio::task::spawn_local(async move {
                    q.sleep_until(t0 + Duration::from_secs(5)).await;
                })
            };
            tokio::task::yield_now().await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            assert_eq!(
                q.len(),
                1,
                "the aborted sleep's entry waits for its deadline"
            );
            q.sleep_until(t0 + Duration::from_secs(6)).await;
            assert_eq!(t0.elapsed(), Duration::from_secs(6));
            // (This sleep may see its deadline before the server pops its entry: a
            // LocalSet polls its main future whenever it runs. The entry goes next turn.)
            tokio::task::yield_now().await;
            assert!(q.is_empty());
        });
    }

    /// Logs when it is resumed; parks once more if asked to.
    struct Sleeper {
        name: u64,
        queue: Rc<SleepQueue>,
        t0: Instant,
        log: Rc<RefCell<Vec<(u64, u64)>>>,
        again: std::cell::Cell<Option<Duration>>,
    }

    impl Parked for Sleeper {
        fn resume(self: Rc<Self>, _: Instant) {
            let at = self.t0.elapsed().as_millis() as u64;
            self.log.borrow_mut().push((self.name, at));
            if let Some(d) = self.again.take() {
                let weak: Weak<Sleeper> = Rc::downgrade(&self);
                self.queue.park(Instant::now() + d, weak);
            }
        }
    }

    #[test]
    fn parked_vus_resume_when_due_even_hundreds_at_once_and_dropped_ones_never() {
        local(async {
            let q = Rc::new(SleepQueue::default());
            let t0 = Instant::now();
            let log = Rc::new(RefCell::new(Vec::new()));
            let sleeper = |name: u64, again: Option<Duration>| {
                Rc::new(Sleeper {
                    name,
                    queue: q.clone(),
                    t0,
                    log: log.clone(),
                    again: std::cell::Cell::new(again),
                })
            };
            let park = |s: &Rc<Sleeper>, ms: u64| {
                let weak: Weak<Sleeper> = Rc::downgrade(s);
                q.park(t0 + Duration::from_millis(ms), weak);
            };
            // 200 due at the same instant: more than one turn of the server.
            let keep: Vec<_> = (0..200).map(|name| sleeper(name, None)).collect();
            for s in &keep {
                park(s, 100);
            }
            // One that parks again after its first resume.
            let twice = sleeper(1000, Some(Duration::from_millis(50)));
            park(&twice, 20);
            // One dropped while parked: never resumed.
            let gone = sleeper(2000, None);
            park(&gone, 10);
            drop(gone);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let log = log.borrow();
            assert_eq!(log[..2], [(1000, 20), (1000, 70)]);
            assert_eq!(
                log.len(),
                202,
                "every live sleeper once, the one that parked again twice"
            );
            assert!(log[2..].iter().all(|&(name, at)| name < 200 && at == 100));
            assert!(q.is_empty());
        });
    }

    #[test]
    fn a_new_local_set_gets_a_new_server() {
        let q = Rc::new(SleepQueue::default());
        for _ in 0..2 {
            local(async {
                let t0 = Instant::now();
                q.sleep_until(t0 + Duration::from_millis(20)).await;
                assert_eq!(t0.elapsed(), Duration::from_millis(20));
            });
        }
    }
}
