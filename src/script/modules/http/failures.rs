//! What k6 says about a request that went wrong: a rate-limited `Request Failed` warning
//! when no response came (status 0: refused, reset, timeout, TLS, DNS), the `Stopped after
//! N redirects` warning, or under the `throw` option an error raised in the script.

use super::request::Prepared;
use crate::http::Response;
use crate::script::context::WorkerCtx;

/// Warns about the request's outcome; `Err` is the error to raise under `throw`. Runs for
/// every request: the usual answered request returns after two comparisons, and the clock
/// is read only for a line that is printed.
pub fn notice(ctx: &WorkerCtx, p: &Prepared, hops: &[Response]) -> Result<(), String> {
    let Some(last) = hops.last() else {
        return Ok(());
    };
    let secs = || ctx.cfg.started.elapsed().as_secs();
    if let Some(e) = &last.error {
        if ctx.http().settings.throw {
            return Err(format!(
                "request failed: {} {}: {}",
                last.method, last.url, e.message
            ));
        }
        if ctx.request_failures.allow() {
            eprintln!(
                "WARN[{:04}] Request Failed  method={} url={} error={:?}",
                secs(),
                last.method,
                last.url,
                e.message
            );
        }
        return Ok(());
    }
    if hops.len() as u32 <= p.spec.max_redirects || p.redirects_given {
        return Ok(());
    }
    let stopped = (300..400).contains(&last.status) && last.headers.get("location").is_some();
    let silenced = ctx.http().settings.max_redirects.is_some();
    if stopped && !silenced && ctx.request_failures.allow() {
        eprintln!(
            "WARN[{:04}] Stopped after {} redirects and returned the redirection; pass {{ redirects = n }} in request params or set the option maxRedirects to silence this  url={}",
            secs(),
            hops.len(),
            hops[0].url
        );
    }
    Ok(())
}
