//! The live progress on stderr, k6-like, only when stderr is a terminal and not `-q`:
//! one line for the run, then one bar per scenario, redrawn twice a second.

use crate::exec::RunState;
use crate::options::{duration, Plan};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What a scenario's bar needs: name, when it starts, how long it runs, what it does.
struct Bar {
    name: String,
    start: Duration,
    length: Duration,
    what: String,
}

const WIDTH: usize = 40;

impl Progress {
    pub fn start(run: Arc<RunState>, plan: &Plan, quiet: bool) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        // SAFETY: isatty only reads the file descriptor's state.
        let tty = unsafe { libc::isatty(2) } == 1;
        if quiet || !tty {
            return Progress { done, thread: None };
        }
        let max_vus = plan.max_vus();
        let mut bars: Vec<Bar> = plan
            .scenarios
            .iter()
            .map(|s| Bar {
                name: s.name.clone(),
                start: s.start_time,
                length: s.executor.scheduled(),
                what: s.executor.name().to_string(),
            })
            .collect();
        bars.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
        let d = done.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let width = max_vus.to_string().len();
            let name_width = bars.iter().map(|b| b.name.len()).max().unwrap_or(0);
            let mut first = true;
            while !d.load(Ordering::Relaxed) {
                let t = started.elapsed();
                let mut out = String::new();
                if !first {
                    out.push_str(&format!("\x1b[{}A", bars.len() + 1));
                }
                first = false;
                out.push_str(&format!(
                    "\rrunning ({:02}m{:04.1}s), {:0w$}/{} VUs, {} complete and {} interrupted iterations\x1b[K\n",
                    t.as_secs() / 60,
                    t.as_secs_f64() % 60.0,
                    run.gauges.active.load(Ordering::Relaxed),
                    max_vus,
                    run.complete.load(Ordering::Relaxed),
                    run.interrupted.load(Ordering::Relaxed),
                    w = width
                ));
                for b in &bars {
                    out.push_str(&bar_line(b, t, name_width));
                }
                eprint!("{out}");
                let _ = std::io::stderr().flush();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The drawing thread only sleeps and prints; joining it cannot fail in practice.
            let _ = t.join();
        }
    }
}

fn bar_line(b: &Bar, t: Duration, name_width: usize) -> String {
    let in_scenario = t.saturating_sub(b.start).min(b.length);
    let frac = if b.length.is_zero() {
        1.0
    } else {
        in_scenario.as_secs_f64() / b.length.as_secs_f64()
    };
    let filled = (frac * WIDTH as f64) as usize;
    let mark = if frac >= 1.0 { "✓" } else { " " };
    let bar = if filled >= WIDTH {
        "=".repeat(WIDTH)
    } else {
        format!("{}>{}", "=".repeat(filled), " ".repeat(WIDTH - filled - 1))
    };
    format!(
        "{:<nw$} {mark} [{bar}] {}/{}  {}\x1b[K\n",
        b.name,
        duration::format(Duration::from_secs(in_scenario.as_secs())),
        duration::format(b.length),
        b.what,
        nw = name_width
    )
}
