//! `--features heap-profile`: a global allocator that counts what is live, by size class,
//! and a thread that prints it with the process's RSS once a second (stderr). It answers
//! "how much of the RSS is live heap, and of what size", at full speed: heaptrack slows the
//! engine enough to change how many requests are in flight. `bench/heap-timeline.sh` runs
//! it; the release build never has it (one atomic add per allocation).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Size classes of 16 bytes up to 8 KiB; one more for everything bigger (counted in bytes).
const CLASS: usize = 16;
const SMALL_MAX: usize = 8192;
const CLASSES: usize = SMALL_MAX / CLASS + 2;
const BIG: usize = CLASSES - 1;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
/// Live blocks per small class; live bytes in `BIG`.
static LIVE_BY_CLASS: [AtomicUsize; CLASSES] = [ZERO; CLASSES];

fn class_of(size: usize) -> usize {
    if size > SMALL_MAX {
        BIG
    } else {
        size.div_ceil(CLASS)
    }
}

fn count(size: usize, added: bool) {
    let (class, unit) = match class_of(size) {
        BIG => (BIG, size),
        c => (c, 1),
    };
    if added {
        LIVE_BYTES.fetch_add(size, Relaxed);
        LIVE_BY_CLASS[class].fetch_add(unit, Relaxed);
    } else {
        LIVE_BYTES.fetch_sub(size, Relaxed);
        LIVE_BY_CLASS[class].fetch_sub(unit, Relaxed);
    }
}

/// mimalloc, counted.
pub struct Counting;

// SAFETY: every call is forwarded to mimalloc unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), true);
        unsafe { engine::alloc::Mimalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), true);
        unsafe { engine::alloc::Mimalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), false);
        unsafe { engine::alloc::Mimalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, true);
        count(layout.size(), false);
        unsafe { engine::alloc::Mimalloc.realloc(ptr, layout, new_size) }
    }
}

/// The largest size classes by live bytes: "upper bound of the class: KiB".
fn top_classes(n: usize) -> String {
    let mut by_bytes: Vec<(usize, usize)> = (1..BIG)
        .map(|c| (c * CLASS, LIVE_BY_CLASS[c].load(Relaxed) * c * CLASS))
        .collect();
    by_bytes.push((usize::MAX, LIVE_BY_CLASS[BIG].load(Relaxed)));
    by_bytes.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
    by_bytes
        .iter()
        .take(n)
        .filter(|&&(_, bytes)| bytes > 0)
        .map(|&(upto, bytes)| match upto {
            usize::MAX => format!(">8K:{}K", bytes >> 10),
            _ => format!("{upto}:{}K", bytes >> 10),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn rss_mb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<usize>().ok())
        .map_or(0, |kb| kb >> 10)
}

/// Prints `heap t=<s> rss <MB> live <MB> | <class>:<KiB> ...` every second until exit.
pub fn start_reporter() {
    std::thread::spawn(|| {
        for t in 1.. {
            std::thread::sleep(std::time::Duration::from_secs(1));
            eprintln!(
                "heap t={t} rss {} live {} | {}",
                rss_mb(),
                LIVE_BYTES.load(Relaxed) >> 20,
                top_classes(16)
            );
        }
    });
}
