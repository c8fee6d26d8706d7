//! `engine serve`: the reference funnel server, a local twin of the tracking worker and the
//! dashboard API. It runs alone: nothing here uses the rest of the engine.

pub mod funnel;
pub mod routes;
pub mod store;

use funnel::Funnel;
use routes::App;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::{Record, Store};
use tokio::net::TcpListener;

/// Opens the log, replays it into a fresh funnel, and returns the app ready to serve.
pub fn open(
    db: Option<&Path>,
    bounce_ttl: Duration,
    session_ttl: Duration,
) -> Result<Arc<App>, String> {
    let (store, records) = Store::open(db)?;
    let mut f = Funnel::new(bounce_ttl, session_ttl);
    for r in &records {
        match r {
            Record::Event(e) => f.apply(e),
            Record::Reset { day, source, .. } => {
                f.reset_day(day, source.as_deref());
            }
        }
    }
    f.expire(routes::now_ms());
    Ok(Arc::new(App::new(f, store)))
}

/// Serves HTTP/1.1 keep-alive connections until `shutdown` resolves.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: say so, back off, keep serving.
                    eprintln!("engine serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { routes::handle(req, &app).await }
            });
            // A client that hangs up mid-request is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}
