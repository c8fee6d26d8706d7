//! Preemption of Lua code that runs too long without yielding (`while true do end`, a
//! runaway parser): a watchdog thread notices a resume of a VU coroutine that has gone on
//! for [`SLICE`] and sets a count hook on that coroutine; at its next VM instructions the
//! hook yields it back to its driver, which lets the worker's runtime run (other VUs,
//! timers, the executor's deadline, a stop signal) and then resumes it where it stood. So a
//! CPU-bound VU is interrupted at its scenario's deadline like any other, and
//! `setupTimeout`/`teardownTimeout` hold against a loop.
//!
//! Nothing runs on the hot path but two uncontended locks per resume: the hook is set only
//! on a coroutine that already overran its slice, from the watchdog thread, with
//! `lua_sethook` (which Lua documents as safe to call asynchronously, as from a signal
//! handler). The slot's lock keeps the coroutine alive while the watchdog touches it: the
//! worker cannot finish `leave` (and so cannot drop the coroutine) in between.
//!
//! Not covered: init code (it is not a coroutine), and a loop inside a coroutine the script
//! created itself (the hook is on the VU's coroutine).

use mlua::ffi;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Lua code that has run this long without yielding is made to yield.
pub const SLICE: Duration = Duration::from_millis(20);
/// How often the watchdog looks.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Instructions between hook calls while the code cannot yield (inside a C call such as a
/// `table.sort` comparator): the hook tries again this often.
const RETRY_EVERY: i32 = 1000;

/// A coroutine being resumed on a worker, as the watchdog sees it.
struct Running {
    state: *mut ffi::lua_State,
    since: Instant,
    hooked: bool,
}

// SAFETY: `state` is only dereferenced (by lua_sethook) while the slot's lock is held, and
// the worker clears the slot under that lock before the coroutine can be dropped.
unsafe impl Send for Running {}

/// One per Lua state: which coroutine it is resuming, since when.
#[derive(Default)]
pub struct Slot {
    running: Mutex<Option<Running>>,
}

impl Slot {
    /// A slot the watchdog looks at for as long as it lives.
    pub fn watched() -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        watchdog().register(&slot);
        slot
    }

    /// The worker is about to resume the coroutine `state`.
    pub fn enter(&self, state: *mut ffi::lua_State) {
        *self.running.lock().expect("preempt slot") = Some(Running {
            state,
            since: Instant::now(),
            hooked: false,
        });
    }

    /// The resume returned. `true` if the watchdog hooked the coroutine meanwhile; the
    /// caller then knows a yield without values was the hook's, and must call [`unhook`]
    /// if the coroutine stopped for another reason.
    pub fn leave(&self) -> bool {
        self.running
            .lock()
            .expect("preempt slot")
            .take()
            .is_some_and(|r| r.hooked)
    }
}

/// Removes a preemption hook that did not fire (on the worker's own thread, with the
/// coroutine suspended or finished).
pub fn unhook(state: *mut ffi::lua_State) {
    // SAFETY: called by the thread that owns the state, which is not running.
    unsafe { ffi::lua_sethook(state, None, 0, 0) };
}

/// Yields the running coroutine at the first instruction where it can.
unsafe extern "C-unwind" fn preempt(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    if ffi::lua_isyieldable(state) != 0 {
        ffi::lua_sethook(state, None, 0, 0);
        // Lua 5.4: a count hook may yield with no values; the VM suspends the coroutine
        // when the hook returns.
        ffi::lua_yield(state, 0);
    }
}

struct Watchdog {
    slots: Mutex<Vec<Weak<Slot>>>,
}

impl Watchdog {
    fn register(&self, slot: &Arc<Slot>) {
        self.slots
            .lock()
            .expect("watchdog slots")
            .push(Arc::downgrade(slot));
    }

    fn look(&self) {
        let mut slots = self.slots.lock().expect("watchdog slots");
        slots.retain(|weak| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            let mut running = slot.running.lock().expect("preempt slot");
            if let Some(r) = running.as_mut() {
                if !r.hooked && r.since.elapsed() >= SLICE {
                    // SAFETY: the coroutine is alive while its slot is set (see `Running`).
                    unsafe {
                        ffi::lua_sethook(r.state, Some(preempt), ffi::LUA_MASKCOUNT, RETRY_EVERY)
                    };
                    r.hooked = true;
                }
            }
            true
        });
    }
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            slots: Mutex::default(),
        }));
        // A daemon: it sleeps between looks and ends with the process.
        let spawned = std::thread::Builder::new()
            .name("preempt-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_EVERY);
                w.look();
            });
        if let Err(e) = spawned {
            eprintln!("WARN  no preemption of runaway Lua code: cannot start its watchdog: {e}");
        }
        w
    })
}
