//! Preemption of Lua code that runs too long without yielding (`while true do end`, a
//! runaway parser): a watchdog thread notices a resume of a VU coroutine that has gone on
//! for [`SLICE`] (it has seen the same resume at [`LOOKS`] looks in a row) and sets a count
//! hook on that coroutine; at its next VM instructions the hook yields it back to its
//! driver, which lets the worker's runtime run (other VUs, timers, the executor's deadline,
//! a stop signal) and then resumes it where it stood. So a CPU-bound VU is interrupted at
//! its scenario's deadline like any other, and `setupTimeout`/`teardownTimeout` hold
//! against a loop.
//!
//! Nothing runs on the hot path but three atomic accesses per resume (no lock, no clock
//! read: the watchdog counts its own looks): the hook is set only on a coroutine that
//! already overran its slice, from the watchdog thread, with `lua_sethook` (which Lua
//! documents as safe to call asynchronously, as from a signal handler). While it does, the
//! slot holds a marker the worker waits out before it can leave the resume (and so before
//! it can drop the coroutine).
//!
//! Not covered: init code (it is not a coroutine), and a loop inside a coroutine the script
//! created itself (the hook is on the VU's coroutine).

use mlua::ffi;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// Lua code that has run this long without yielding is made to yield.
pub const SLICE: Duration = Duration::from_millis(20);
/// How often the watchdog looks.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Looks at which a resume must be seen to have run for [`SLICE`]: the first comes at most
/// one interval after it began, each later one at least an interval after the one before
/// (a sleep may overrun, never end early). So a hooked resume ran 20 to 25 ms, or more when
/// the watchdog thread is descheduled.
const LOOKS: u32 = (SLICE.as_millis() / WATCH_EVERY.as_millis()) as u32 + 1;
/// Instructions between hook calls while the code cannot yield (inside a C call such as a
/// `table.sort` comparator): the hook tries again this often.
const RETRY_EVERY: i32 = 1000;

/// Stands in a slot's `running` while the watchdog hooks that coroutine.
const BUSY: *mut ffi::lua_State = std::ptr::dangling_mut();

/// One per Lua state: which coroutine it is resuming. Atomics, not a lock: a resume costs a
/// load and two plain stores on entry and one compare-exchange on return.
pub struct Slot {
    /// The coroutine being resumed; null between resumes; [`BUSY`] while the watchdog
    /// hooks it (the worker waits for it to be put back before it leaves, so the
    /// coroutine cannot be dropped while the watchdog touches it).
    running: AtomicPtr<ffi::lua_State>,
    /// Resumes begun (written by the worker only): the watchdog tells a long resume from a
    /// new one by it.
    resumes: AtomicU32,
    /// The watchdog hooked the current resume.
    hooked: AtomicBool,
}

impl Slot {
    /// A slot the watchdog looks at for as long as it lives.
    pub fn watched() -> Arc<Slot> {
        let slot = Arc::new(Slot {
            running: AtomicPtr::new(std::ptr::null_mut()),
            resumes: AtomicU32::new(0),
            hooked: AtomicBool::new(false),
        });
        watchdog().register(&slot);
        slot
    }

    /// The worker is about to resume the coroutine `state`.
    pub fn enter(&self, state: *mut ffi::lua_State) {
        let n = self.resumes.load(Relaxed).wrapping_add(1);
        self.resumes.store(n, Relaxed);
        self.running.store(state, Release);
    }

    /// The resume of `state` returned. `true` if the watchdog hooked the coroutine
    /// meanwhile; the caller then knows a yield without values was the hook's, and must call
    /// [`unhook`] if the coroutine stopped for another reason.
    pub fn leave(&self, state: *mut ffi::lua_State) -> bool {
        let mut spins = 0u32;
        loop {
            match self
                .running
                .compare_exchange_weak(state, std::ptr::null_mut(), Acquire, Relaxed)
            {
                Ok(_) => break,
                // The watchdog holds it for the time of one lua_sethook.
                Err(BUSY) => {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        // The watchdog may share this core.
                        std::thread::yield_now();
                    }
                }
                Err(now) if now == state => {} // a weak exchange may fail spuriously
                // Not this resume's (an unpaired leave): nothing to wait for.
                Err(_) => {
                    self.running.store(std::ptr::null_mut(), Release);
                    break;
                }
            }
        }
        if self.hooked.load(Relaxed) {
            self.hooked.store(false, Relaxed);
            return true;
        }
        false
    }

    /// The watchdog's look: hooks the coroutine if `seen` shows the same resume at
    /// [`LOOKS`] looks in a row.
    fn look(&self, seen: &mut Seen) {
        let state = self.running.load(Acquire);
        if state.is_null() || state == BUSY {
            seen.looks = 0;
            return;
        }
        let resume = self.resumes.load(Relaxed);
        if resume != seen.resume {
            *seen = Seen { resume, looks: 1 };
            return;
        }
        seen.looks += 1;
        if seen.looks < LOOKS || self.hooked.load(Relaxed) {
            return;
        }
        // Taking the slot keeps the worker from finishing `leave` (and so from dropping the
        // coroutine) until it is put back.
        if self
            .running
            .compare_exchange(state, BUSY, Acquire, Relaxed)
            .is_ok()
        {
            // SAFETY: the coroutine is alive while its slot holds BUSY (above).
            unsafe { ffi::lua_sethook(state, Some(preempt), ffi::LUA_MASKCOUNT, RETRY_EVERY) };
            self.hooked.store(true, Relaxed);
            self.running.store(state, Release);
        }
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

/// The watchdog's memory of a slot: the resume it saw last, and at how many looks.
#[derive(Default)]
struct Seen {
    resume: u32,
    looks: u32,
}

struct Watchdog {
    slots: Mutex<Vec<(Weak<Slot>, Seen)>>,
}

impl Watchdog {
    fn register(&self, slot: &Arc<Slot>) {
        self.slots
            .lock()
            .expect("watchdog slots")
            .push((Arc::downgrade(slot), Seen::default()));
    }

    fn look(&self) {
        let mut slots = self.slots.lock().expect("watchdog slots");
        slots.retain_mut(|(weak, seen)| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            slot.look(seen);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A coroutine in an endless loop is made to yield once it has run for a slice, and
    /// the slot tells its driver so; a short resume is not hooked.
    #[test]
    fn a_runaway_resume_is_hooked_after_a_slice_and_a_short_one_is_not() {
        let lua = mlua::Lua::new();
        let slot = Slot::watched();
        let spin = lua
            .create_thread(lua.load("while true do end").into_function().unwrap())
            .unwrap();
        let quick = lua
            .create_thread(lua.load("coroutine.yield(1)").into_function().unwrap())
            .unwrap();
        // SAFETY: both coroutines belong to `lua` and are not running.
        unsafe {
            let resume = |co: *mut ffi::lua_State| {
                let mut nres = 0;
                let status = ffi::lua_resume(co, std::ptr::null_mut(), 0, &mut nres);
                ffi::lua_settop(co, 0);
                status
            };
            slot.enter(quick.state());
            assert_eq!(resume(quick.state()), ffi::LUA_YIELD);
            assert!(!slot.leave(quick.state()));

            let t0 = Instant::now();
            slot.enter(spin.state());
            assert_eq!(resume(spin.state()), ffi::LUA_YIELD);
            assert!(slot.leave(spin.state()), "the yield was the watchdog's");
            assert!(t0.elapsed() >= SLICE, "hooked after {:?}", t0.elapsed());
            // It goes on where it stood, and is hooked again a slice later.
            slot.enter(spin.state());
            assert_eq!(resume(spin.state()), ffi::LUA_YIELD);
            assert!(slot.leave(spin.state()));
        }
    }
}
