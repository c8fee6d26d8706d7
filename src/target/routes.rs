//! The HTTP surface of `engine serve`: /track, /funnel, /stats, /health, CORS.

use super::funnel::{day_of, page_index, Event, Funnel, Kind, PageCounters, SourceFilter, PAGES};
use super::store::{Record, Store};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, ORIGIN, VARY};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Largest accepted beacon body.
pub const MAX_BODY: usize = 16 * 1024;

/// Everything the handlers share.
pub struct App {
    pub funnel: Mutex<Funnel>,
    pub store: Store,
    pub started: Instant,
    /// Events accepted per second, for /stats: (second, count) of the current and last second.
    rate: Mutex<(u64, u64, u64)>,
    pub rejected: AtomicU64,
}

impl App {
    pub fn new(funnel: Funnel, store: Store) -> App {
        App {
            funnel: Mutex::new(funnel),
            store,
            started: Instant::now(),
            rate: Mutex::new((0, 0, 0)),
            rejected: AtomicU64::new(0),
        }
    }

    fn note_event(&self, now_ms: u64) {
        let sec = now_ms / 1000;
        let mut r = self.rate.lock().expect("rate lock");
        if r.0 != sec {
            *r = (sec, 0, if r.0 + 1 == sec { r.1 } else { 0 });
        }
        r.1 += 1;
    }

    fn events_per_second(&self, now_ms: u64) -> u64 {
        let r = self.rate.lock().expect("rate lock");
        if r.0 == now_ms / 1000 {
            r.2
        } else if r.0 + 1 == now_ms / 1000 {
            r.1
        } else {
            0
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type Res = Response<Full<Bytes>>;

fn json_response(status: StatusCode, v: Value) -> Res {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, msg: impl Into<String>) -> Res {
    json_response(status, json!({ "ok": false, "error": msg.into() }))
}

/// Routes one request. Never fails: every problem is an HTTP status with a JSON error.
pub async fn handle(req: Request<hyper::body::Incoming>, app: &App) -> Result<Res, hyper::Error> {
    let origin = req.headers().get(ORIGIN).cloned();
    let mut res = route(req, app).await;
    if let Some(o) = origin {
        res.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, o);
        res.headers_mut()
            .insert(VARY, HeaderValue::from_static("Origin"));
    }
    Ok(res)
}

async fn route(req: Request<hyper::body::Incoming>, app: &App) -> Res {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::OPTIONS, _) => preflight(&req),
        (Method::POST, "/track") => track(req, app).await,
        (Method::GET, "/funnel") => funnel(app, &query),
        (Method::DELETE, "/funnel") => reset(app, &query).await,
        (Method::GET, "/stats") => stats(app),
        (Method::GET, "/health") => health(app),
        (_, "/track" | "/funnel" | "/stats" | "/health") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {path}", req.method()),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

fn preflight(req: &Request<hyper::body::Incoming>) -> Res {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        "Access-Control-Allow-Methods",
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    let allow = req
        .headers()
        .get("Access-Control-Request-Headers")
        .cloned()
        .unwrap_or(HeaderValue::from_static("Content-Type"));
    h.insert("Access-Control-Allow-Headers", allow);
    h.insert("Access-Control-Max-Age", HeaderValue::from_static("86400"));
    r
}

async fn track(req: Request<hyper::body::Incoming>, app: &App) -> Res {
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        app.rejected.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_BODY} bytes"),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            app.rejected.fetch_add(1, Ordering::Relaxed);
            return if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than {MAX_BODY} bytes"),
                )
            } else {
                error(StatusCode::BAD_REQUEST, "could not read the body")
            };
        }
    };
    let now = now_ms();
    let event = match parse_beacon(&body, now) {
        Ok(e) => e,
        Err(msg) => {
            app.rejected.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, msg);
        }
    };
    let kind = event.kind;
    let committed = {
        let mut f = app.funnel.lock().expect("funnel lock is never poisoned");
        f.apply(&event);
        // Appended under the lock, so the log's order is the order of application.
        app.store.append(Record::Event(event))
    };
    app.note_event(now);
    match committed.await {
        Ok(Ok(())) => json_response(StatusCode::OK, json!({ "ok": true, "type": kind.name() })),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event could not be stored",
        ),
    }
}

/// Validates a beacon: type, page and session_id required; source and time_on_page optional.
pub fn parse_beacon(body: &[u8], now: u64) -> Result<Event, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v.as_object().ok_or("expected a JSON object")?;
    let text = |k: &str| -> Result<Option<&str>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("field {k} must be a string, got {other}")),
        }
    };
    let kind_s = text("type")?.ok_or("missing field: type")?;
    let kind = Kind::parse(kind_s).ok_or_else(|| format!("unknown type {kind_s:?}"))?;
    let page_s = text("page")?.ok_or("missing field: page")?;
    let page = page_index(page_s)
        .ok_or_else(|| format!("unknown page {page_s:?} (pages: {})", PAGES.join(", ")))?;
    let session = text("session_id")?.ok_or("missing field: session_id")?;
    if session.is_empty() || session.len() > 256 {
        return Err("session_id must be 1 to 256 characters".into());
    }
    let source = text("source")?.unwrap_or("direct");
    let time_on_page = match obj.get("time_on_page") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => n.as_f64(),
        Some(other) => {
            return Err(format!(
                "field time_on_page must be a non-negative number, got {other}"
            ))
        }
    };
    Ok(Event {
        kind,
        page,
        session: session.to_string(),
        source: source.to_string(),
        time_on_page,
        at_ms: now,
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.replace("%2F", "/").replace('+', " "))
    })
}

fn ratio(a: u64, b: u64) -> Value {
    if b == 0 {
        json!(0.0)
    } else {
        json!((a as f64 / b as f64 * 10_000.0).round() / 10_000.0)
    }
}

fn page_json(c: &PageCounters) -> Value {
    json!({
        "entries": c.entries, "exits": c.exits, "reexits": c.reexits, "reenters": c.reenters,
        "completes": c.completes, "heartbeats": c.heartbeats, "bounces": c.bounces,
        "bounce_rate": ratio(c.bounces.max(0) as u64, c.entries),
    })
}

fn funnel(app: &App, query: &str) -> Res {
    let day = query_param(query, "date").unwrap_or_else(|| day_of(now_ms()));
    if !is_day(&day) {
        return error(StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD");
    }
    let filter = SourceFilter {
        only: query_param(query, "source"),
        exclude_prefix: query_param(query, "exclude_source_prefix"),
    };
    let (pages, sources) = {
        let mut f = app.funnel.lock().expect("funnel lock");
        f.expire(now_ms());
        (f.day_totals(&day, &filter), f.sources(&day))
    };
    let mut steps = serde_json::Map::new();
    for (i, p) in PAGES.iter().enumerate() {
        steps.insert(p.to_string(), page_json(&pages[i]));
    }
    let mut conversions = serde_json::Map::new();
    for i in 0..PAGES.len() - 1 {
        conversions.insert(
            format!("{}_to_{}", PAGES[i], PAGES[i + 1]),
            ratio(pages[i + 1].entries, pages[i].entries),
        );
    }
    let congrats = &pages[4];
    let brand = &pages[5];
    json_response(
        StatusCode::OK,
        json!({
            "date": day,
            "source": filter.only,
            "exclude_source_prefix": filter.exclude_prefix,
            "sources": sources.into_iter().filter(|s| filter.keeps(s)).collect::<Vec<_>>(),
            "steps": steps,
            "conversions": conversions,
            "congrats_conversion": ratio(congrats.completes, congrats.entries),
            "brand_missions_completion": ratio(brand.completes, brand.entries),
            "congrats_completes": congrats.completes,
            "brand_missions_completed": brand.completes,
        }),
    )
}

/// `YYYY-MM-DD` with digits where digits go.
fn is_day(day: &str) -> bool {
    let b = day.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

async fn reset(app: &App, query: &str) -> Res {
    let Some(day) = query_param(query, "date") else {
        return error(StatusCode::BAD_REQUEST, "missing query parameter: date");
    };
    if !is_day(&day) {
        return error(StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD");
    }
    let source = query_param(query, "source");
    let (removed, committed) = {
        let mut f = app.funnel.lock().expect("funnel lock");
        let removed = f.reset_day(&day, source.as_deref());
        (
            removed,
            app.store.append(Record::Reset {
                day: day.clone(),
                source: source.clone(),
                at_ms: now_ms(),
            }),
        )
    };
    match committed.await {
        Ok(Ok(())) => json_response(
            StatusCode::OK,
            json!({ "ok": true, "date": day, "source": source, "series_removed": removed }),
        ),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reset could not be stored",
        ),
    }
}

fn stats(app: &App) -> Res {
    let now = now_ms();
    let (live, by_source, pending, ttl) = {
        let mut f = app.funnel.lock().expect("funnel lock");
        f.expire(now);
        (
            f.live_by_page(now),
            f.live_by_source(now),
            f.pending_bounces(),
            f.session_ttl,
        )
    };
    let by_page: serde_json::Map<String, Value> = PAGES
        .iter()
        .zip(live.iter())
        .map(|(p, n)| (p.to_string(), json!(n)))
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "live_sessions": live.iter().sum::<u64>(),
            "live_by_page": by_page,
            // Per source, so a run's teardown is not fooled by other traffic on a shared
            // server; with the TTL, it knows how long a cut-off journey stays live.
            "live_by_source": by_source,
            "session_ttl_ms": ttl.as_millis() as u64,
            "pending_bounces": pending,
            "events_per_second": app.events_per_second(now),
        }),
    )
}

fn health(app: &App) -> Res {
    let accepted = app.funnel.lock().expect("funnel lock").accepted;
    json_response(
        StatusCode::OK,
        json!({
            "ok": true,
            "uptime_s": app.started.elapsed().as_secs_f64(),
            "events_accepted": accepted,
            "events_rejected": app.rejected.load(Ordering::Relaxed),
            "queue_depth": app.store.queue_depth(),
            "log": app.store.location,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_track_body_is_accepted_or_refused_without_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_beacon(&body, 1_700_000_000_000);
        }

        #[test]
        fn beacon_shaped_bodies_never_panic(
            kind in "(funnel_enter|funnel_exit|heartbeat|funnel_complete|x)",
            page in "(website|tutorial|webinar|contract|congrats|brand-steps|home)",
            session in ".{0,12}",
            extra in "(,\"time_on_page\":-?[0-9.e]{0,6}|,\"source\":[0-9a-z\"]{0,6}|)",
        ) {
            let body = format!("{{\"type\":\"{kind}\",\"page\":\"{page}\",\"session_id\":{:?}{extra}}}", session);
            let _ = parse_beacon(body.as_bytes(), 1_700_000_000_000);
        }
    }
}
