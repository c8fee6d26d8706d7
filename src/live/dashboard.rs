//! The web dashboard: a publisher thread turns the aggregator's time series and snapshots
//! into events every period; an HTTP server (hyper, its own thread) serves the page and
//! streams the events as server-sent events. A browser that connects late gets the whole
//! history first. At the end: the last events, then the HTML report if asked.

use super::spec::DashboardConfig;
use super::state::{self, FunnelSpec};
use crate::error::{Error, Result};
use crate::metrics::{Snapshot, SnapshotRequester};
use crate::thresholds::{self, Threshold, Verdict};
use bytes::Bytes;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use serde_json::{json, Value};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

/// What browsers are sent: the plan, every series delta so far, and the latest state.
#[derive(Default)]
struct Events {
    meta: Option<Arc<str>>,
    series: Vec<Arc<str>>,
    state: Option<Arc<str>>,
    state_version: u64,
    done: bool,
}

struct Hub {
    events: Mutex<Events>,
    changed: tokio::sync::Notify,
    browsers: AtomicUsize,
    /// Browsers whose stream has taken the final events.
    told_done: AtomicUsize,
}

impl Hub {
    fn update(&self, f: impl FnOnce(&mut Events)) {
        f(&mut self.events.lock().expect("dashboard events"));
        self.changed.notify_waiters();
    }
}

fn sse(kind: &str, doc: &Value) -> Arc<str> {
    format!("event: {kind}\ndata: {doc}\n\n").into()
}

pub struct Dashboard {
    cfg: DashboardConfig,
    hub: Arc<Hub>,
    /// The address actually bound (port 0 picks a free one).
    addr: Option<std::net::SocketAddr>,
    stop_publisher: Sender<()>,
    publisher: Option<JoinHandle<Publisher>>,
    server: Option<Server>,
}

/// The publisher's state, handed back at the end for the last events and the report.
struct Publisher {
    requester: SnapshotRequester,
    thresholds: Vec<Threshold>,
    funnel: Option<FunnelSpec>,
    trend_stats: Vec<String>,
    meta: Value,
    /// The next period to send, and the layout it belongs to.
    from: usize,
    epoch: Option<u64>,
}

impl Publisher {
    /// Sends the points closed since the last time (all of them after a change of
    /// resolution) and the current state.
    fn publish(&mut self, hub: &Hub, close: bool) -> Option<()> {
        let mut series = self.requester.series_json(self.from, close)?;
        let epoch = series["epoch"].as_u64();
        if self.epoch.is_some() && self.epoch != epoch {
            series = self.requester.series_json(0, false)?;
            series["reset"] = json!(true);
        }
        self.epoch = epoch;
        self.from = series["closed"].as_u64().unwrap_or(0) as usize;
        let snap = self.requester.snapshot()?;
        let verdicts = thresholds::evaluate(&self.thresholds, &snap);
        self.push(hub, &series, &snap, &verdicts, close);
        Some(())
    }

    /// Publishes a series delta and the state; returns the state (the report reuses it).
    fn push(
        &self,
        hub: &Hub,
        series: &Value,
        snap: &Snapshot,
        verdicts: &[Verdict],
        done: bool,
    ) -> Value {
        let st = state::state(
            snap,
            verdicts,
            &self.trend_stats,
            self.funnel.as_ref(),
            done,
        );
        hub.update(|e| {
            e.series.push(sse("series", series));
            e.state = Some(sse("state", &st));
            e.state_version += 1;
            e.done = done;
        });
        st
    }
}

impl Dashboard {
    pub fn start(
        cfg: DashboardConfig,
        requester: SnapshotRequester,
        thresholds: Vec<Threshold>,
        meta: Value,
        funnel: Option<FunnelSpec>,
        trend_stats: Vec<String>,
    ) -> Result<Dashboard> {
        let hub = Arc::new(Hub {
            events: Mutex::new(Events {
                meta: Some(sse("meta", &meta)),
                ..Events::default()
            }),
            changed: tokio::sync::Notify::new(),
            browsers: AtomicUsize::new(0),
            told_done: AtomicUsize::new(0),
        });
        let (addr, server) = match cfg.port {
            None => (None, None),
            Some(port) => {
                let (addr, server) = serve(&cfg.host, port, hub.clone())?;
                (Some(addr), Some(server))
            }
        };
        let (stop_publisher, stop_rx) = bounded::<()>(1);
        let mut publisher = Publisher {
            requester,
            thresholds,
            funnel,
            trend_stats,
            meta,
            from: 0,
            epoch: None,
        };
        let period = cfg.period;
        let hub2 = hub.clone();
        let publisher = std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(period) {
                    if publisher.publish(&hub2, false).is_none() {
                        break;
                    }
                }
                publisher
            })
            .map_err(|e| Error::generic(format!("web dashboard: {e}")))?;
        let dashboard = Dashboard {
            cfg,
            hub,
            addr,
            stop_publisher,
            publisher: Some(publisher),
            server,
        };
        if dashboard.cfg.open {
            if let Some(url) = dashboard.url() {
                // Best effort, as k6: a machine without a browser just has the URL.
                let _ = std::process::Command::new("xdg-open")
                    .arg(&url)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
            }
        }
        Ok(dashboard)
    }

    pub fn url(&self) -> Option<String> {
        self.addr.map(|a| format!("http://{a}"))
    }

    /// The banner's lines.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(url) = self.url() {
            out.push(format!("web dashboard: {url}"));
        }
        if let Some(path) = &self.cfg.export {
            out.push(format!("web dashboard report: {path}"));
        }
        out
    }

    /// Last events (the open period closed), the report, and the server's end: at once,
    /// or with `open`, when the last browser has gone.
    pub fn finish(mut self, snap: &Snapshot, verdicts: &[Verdict]) {
        let _ = self.stop_publisher.send(());
        let mut publisher = self
            .publisher
            .take()
            .and_then(|p| p.join().ok())
            .expect("the dashboard publisher thread returns its state");
        let series = publisher
            .requester
            .series_json(publisher.from, true)
            .unwrap_or_else(|| json!({"series": [], "closed": publisher.from}));
        publisher.from = series["closed"].as_u64().unwrap_or(0) as usize;
        let st = publisher.push(&self.hub, &series, snap, verdicts, true);
        if let Some(path) = &self.cfg.export {
            let whole = publisher
                .requester
                .series_json(0, false)
                .unwrap_or(Value::Null);
            let html = super::report::report_page(&[
                ("meta", &publisher.meta),
                ("series", &whole),
                ("state", &st),
            ]);
            match std::fs::write(path, html) {
                Ok(()) => eprintln!("engine: web dashboard report written to {path}"),
                Err(e) => eprintln!("ERRO  web dashboard export {path}: {e}"),
            }
        }
        // Let connected browsers take the final events before the server stops.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.hub.told_done.load(Ordering::SeqCst) < self.hub.browsers.load(Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.cfg.open && self.server.is_some() {
            let n = self.hub.browsers.load(Ordering::SeqCst);
            if n > 0 {
                eprintln!("engine: waiting for {n} dashboard browser(s) to close (Ctrl-C to stop)");
            }
            while self.hub.browsers.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if let Some((stop, thread)) = self.server.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// The server's stop switch and thread.
type Server = (tokio::sync::oneshot::Sender<()>, JoinHandle<()>);

/// Binds now (so a taken port is an error before the test) and serves on a thread.
fn serve(host: &str, port: u16, hub: Arc<Hub>) -> Result<(std::net::SocketAddr, Server)> {
    let bad = |e: std::io::Error| Error::config(format!("web dashboard on {host}:{port}: {e}"));
    let listener = std::net::TcpListener::bind((host, port)).map_err(bad)?;
    listener.set_nonblocking(true).map_err(bad)?;
    let addr = listener.local_addr().map_err(bad)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("dashboard-http".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the dashboard");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                let page: Bytes = super::report::live_page().into();
                tokio::pin!(stopped);
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        a = listener.accept() => match a {
                            Ok((s, _)) => s,
                            Err(_) => continue,
                        },
                    };
                    let (hub, page) = (hub.clone(), page.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let (hub, page) = (hub.clone(), page.clone());
                            async move { Ok::<_, std::convert::Infallible>(route(req, hub, page)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            })
        })
        .map_err(|e| Error::generic(format!("web dashboard: {e}")))?;
    Ok((addr, (stop, thread)))
}

type Response = hyper::Response<Body>;

fn route(req: hyper::Request<hyper::body::Incoming>, hub: Arc<Hub>, page: Bytes) -> Response {
    let builder = hyper::Response::builder();
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/") => builder
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(Body::Full(Some(page))),
        ("GET", "/events") => builder
            .header("Content-Type", "text/event-stream")
            .header("Cache-Control", "no-store")
            .body(Body::Stream(events(hub))),
        _ => builder
            .status(404)
            .body(Body::Full(Some(Bytes::from_static(b"not found\n")))),
    }
    .expect("static headers are valid")
}

/// One browser's stream: the history, then each new event as it comes; ends after the
/// final state.
fn events(hub: Arc<Hub>) -> tokio::sync::mpsc::Receiver<Bytes> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        hub.browsers.fetch_add(1, Ordering::SeqCst);
        let _gone = Gone(hub.clone());
        let (mut sent_series, mut sent_state, mut sent_meta) = (0usize, 0u64, false);
        loop {
            let changed = hub.changed.notified();
            let (out, done) = {
                let e = hub.events.lock().expect("dashboard events");
                let mut out: Vec<Arc<str>> = Vec::new();
                if !sent_meta {
                    out.extend(e.meta.clone());
                    sent_meta = true;
                }
                out.extend(e.series[sent_series..].iter().cloned());
                sent_series = e.series.len();
                if e.state_version != sent_state {
                    out.extend(e.state.clone());
                    sent_state = e.state_version;
                }
                (out, e.done)
            };
            for ev in out {
                if tx.send(Bytes::from(ev.as_bytes().to_vec())).await.is_err() {
                    return;
                }
            }
            if done {
                let _ = tx
                    .send(Bytes::from_static(b"event: end\ndata: {}\n\n"))
                    .await;
                // Written out once hyper has taken every chunk from the channel.
                for _ in 0..100 {
                    if tx.capacity() == tx.max_capacity() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                hub.told_done.fetch_add(1, Ordering::SeqCst);
                // Keep the stream open so the page does not reconnect; the browser or the
                // end of the process closes it.
                tx.closed().await;
                return;
            }
            // A comment every 15 s keeps proxies from closing an idle stream.
            if tokio::time::timeout(Duration::from_secs(15), changed)
                .await
                .is_err()
                && tx
                    .send(Bytes::from_static(b": keep-alive\n\n"))
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Counts a browser out when its stream ends.
struct Gone(Arc<Hub>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.browsers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A whole body or a stream of chunks.
enum Body {
    Full(Option<Bytes>),
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(hyper::body::Frame::data(b)))),
            Body::Stream(rx) => rx
                .poll_recv(cx)
                .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b)))),
        }
    }
}
