//! k6's response callback: which statuses count as expected. They set the
//! `expected_response` tag and `http_req_failed` of every hop.

use crate::http::Response;
use crate::script::stack::Slot;

/// Which statuses count as expected (k6's response callback): they set the
/// `expected_response` tag and `http_req_failed`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// `http.expectedStatuses(...)`: inclusive ranges.
    Statuses(Vec<(u16, u16)>),
    /// No callback (`setResponseCallback(null)`, `responseCallback = false`): no
    /// `expected_response` tag and no `http_req_failed` sample, as in k6.
    Off,
}

impl Expected {
    /// k6's default: `http.expectedStatuses({min: 200, max: 399})`.
    pub fn default_statuses() -> Expected {
        Expected::Statuses(vec![(200, 399)])
    }

    /// Reads `http.expectedStatuses(...)`'s object (a flat list lo1, hi1, lo2, hi2, ...) or
    /// `false`/`json.null` for none.
    pub fn read(v: Slot) -> Result<Expected, String> {
        if v.kind() == mlua::ffi::LUA_TBOOLEAN && !v.boolean() || v.light_userdata().is_some() {
            return Ok(Expected::Off);
        }
        if !v.is_table() {
            return Err(format!(
                "responseCallback: expected http.expectedStatuses(...), got {}",
                v.type_name()
            ));
        }
        let mut bounds = Vec::new();
        v.pairs(|k, n| {
            if let (Some(i), Some(n)) = (k.integer(), n.integer()) {
                bounds.push((i, n.clamp(0, 999) as u16));
            }
            Ok(())
        })?;
        bounds.sort_unstable();
        Ok(Expected::Statuses(
            bounds.chunks_exact(2).map(|p| (p[0].1, p[1].1)).collect(),
        ))
    }

    /// Whether a response is expected; None when no callback is set.
    pub fn judge(&self, res: &Response) -> Option<bool> {
        match self {
            Expected::Off => None,
            Expected::Statuses(ranges) => Some(
                res.error.is_none()
                    && ranges
                        .iter()
                        .any(|&(lo, hi)| (lo..=hi).contains(&res.status)),
            ),
        }
    }
}
