//! The live progress line on stderr, k6-like, only when stderr is a terminal and not `-q`.

use crate::exec::RunState;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(run: Arc<RunState>, max_vus: u64, quiet: bool, started: Instant) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        // SAFETY: isatty only reads the file descriptor's state.
        let tty = unsafe { libc::isatty(2) } == 1;
        if quiet || !tty {
            return Progress { done, thread: None };
        }
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let width = max_vus.to_string().len();
            while !d.load(Ordering::Relaxed) {
                let t = started.elapsed().as_secs_f64();
                let line = format!(
                    "running ({:02}m{:04.1}s), {:0w$}/{} VUs, {} complete and {} interrupted iterations",
                    (t / 60.0) as u64,
                    t % 60.0,
                    run.gauges.active.load(Ordering::Relaxed),
                    max_vus,
                    run.complete.load(Ordering::Relaxed),
                    run.interrupted.load(Ordering::Relaxed),
                    w = width
                );
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
                std::thread::sleep(Duration::from_millis(500));
            }
            eprint!("\r\x1b[K");
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
