//! The doorway: parse argv, call the library, turn an error into one line and an exit code.

use clap::Parser;

// mimalloc: the request path allocates small buffers at a high rate (Lua strings and tables,
// hyper buffers); glibc malloc spent ~15% of the engine's CPU there.
#[cfg(not(feature = "heap-profile"))]
#[global_allocator]
static GLOBAL: engine::alloc::Mimalloc = engine::alloc::Mimalloc;

#[cfg(feature = "heap-profile")]
mod heap_profile;
#[cfg(feature = "heap-profile")]
#[global_allocator]
static GLOBAL: heap_profile::Counting = heap_profile::Counting;
use std::process::ExitCode;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    #[cfg(feature = "heap-profile")]
    heap_profile::start_reporter();
    let cli = match engine::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("engine: {line} (see --help)");
            return ExitCode::from(engine::error::ExitCode::InvalidConfig as u8);
        }
    };
    match engine::main_command(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("engine: {e}");
            ExitCode::from(e.code as u8)
        }
    }
}

/// Turns transparent huge pages off for this process (mimalloc asks for them). On this class
/// of VM the kernel zeroes a fresh 2 MB page in ~10 ms, inside whatever thread touched it
/// first: a worker that did stalled every VU due in those milliseconds. Measured at 100,000
/// idle VUs: peak RSS 282 -> 249 MB, the last VU started after 549 -> 249 ms.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
