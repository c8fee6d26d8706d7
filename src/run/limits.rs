//! What the machine allows: the open-file limit (raised to its hard maximum), the sockets
//! each worker's shared pool may open, and a pre-check that a socket-per-VU plan fits.

use crate::error::{Error, Result};
use crate::http::ConnectionPolicy;

/// Requests in flight per worker: `--max-connections` split across workers, or what the
/// open-file limit allows (raised to its hard maximum first), less a reserve, halved
/// because a pool holds up to as many idle sockets as busy ones, and halved again when the
/// reference server runs in this process (it holds the other end of every socket).
pub fn connections_per_worker(total: Option<usize>, workers: usize, serve: bool) -> usize {
    let total = total.unwrap_or_else(|| {
        let usable = open_file_limit().saturating_sub(256).max(64) / 2;
        if serve {
            usable / 2
        } else {
            usable
        }
    });
    (total / workers).max(1)
}

/// The open-file limit, after raising the soft limit to the hard one.
fn open_file_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur as usize
}

/// Under a socket-per-VU policy, checks before anything starts that the plan's VUs fit the
/// open-file limit (the shared policy bounds its sockets by it instead).
pub fn check_fd_budget(policy: ConnectionPolicy, vus: u64, serve: bool) -> Result<()> {
    let name = match policy {
        ConnectionPolicy::Shared => return Ok(()),
        ConnectionPolicy::PerVu => "per-vu",
        ConnectionPolicy::PerIteration => "per-iteration",
        ConnectionPolicy::NoReuse => "per-request",
    };
    // Each VU holds a socket; an in-process server holds the other end of each.
    let spare = 128;
    let needed = vus as usize * if serve { 2 } else { 1 } + spare;
    let limit = open_file_limit();
    if needed > limit {
        return Err(Error::config(format!(
            "--connections {name}: up to {vus} VUs with a connection each need about {needed} open files, but the limit is {limit} (raise `ulimit -n` or use --connections shared)"
        )));
    }
    Ok(())
}

/// The machine's physical memory in bytes (8 GiB if it cannot be read).
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page > 0 {
        pages as u64 * page as u64
    } else {
        8 << 30
    }
}
