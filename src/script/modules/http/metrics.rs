//! k6's built-in HTTP metrics, recorded for every hop of a request.

use super::callback::Expected;
use crate::http::Response;
use crate::script::context::{VuState, WorkerCtx};
use crate::script::tag_cache;

/// Records k6's built-in HTTP metrics for one hop.
pub fn record(
    ctx: &WorkerCtx,
    vu: &VuState,
    res: &Response,
    user_tags: &[(String, String)],
    callback: Option<&Expected>,
) {
    let b = &ctx.cfg.builtins;
    let expected = match callback {
        Some(e) => e.judge(res),
        None => ctx.response_callback.borrow().judge(res),
    };
    let tags = tag_cache::http(ctx, vu, res, expected, user_tags);
    let mut buf = ctx.buffer.borrow_mut();
    let t = &res.timings;
    buf.add(b.http_reqs, tags, 1.0);
    buf.add(b.http_req_duration, tags, t.duration);
    buf.add(b.http_req_blocked, tags, t.blocked);
    buf.add(b.http_req_connecting, tags, t.connecting);
    buf.add(b.http_req_tls_handshaking, tags, t.tls_handshaking);
    buf.add(b.http_req_looking_up, tags, t.looking_up);
    buf.add(b.http_req_sending, tags, t.sending);
    buf.add(b.http_req_waiting, tags, t.waiting);
    buf.add(b.http_req_receiving, tags, t.receiving);
    if let Some(expected) = expected {
        buf.add(b.http_req_failed, tags, if expected { 0.0 } else { 1.0 });
    }
    buf.add(b.data_sent, tags, res.bytes_sent as f64);
    buf.add(b.data_received, tags, res.bytes_received as f64);
}
