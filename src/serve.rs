//! `engine serve`: parse the flags, open the log, serve until Ctrl-C, flush, exit.

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::options::duration;

pub fn serve(args: ServeArgs) -> Result<u8> {
    let bounce_ttl = duration::parse(&args.bounce_ttl)
        .map_err(|e| Error::config(format!("--bounce-ttl: {e}")))?;
    let session_ttl = duration::parse(&args.session_ttl)
        .map_err(|e| Error::config(format!("--session-ttl: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::generic(e.to_string()))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| Error::config(format!("--listen {}: {e}", args.listen)))?;
        let app = crate::target::open(args.db.as_deref(), bounce_ttl, session_ttl)
            .map_err(Error::generic)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::generic(e.to_string()))?;
        let accepted = app.funnel.lock().expect("funnel lock").accepted;
        println!(
            "engine serve: listening on http://{addr} (event log: {}, {accepted} events replayed)",
            app.store.location
        );
        let shutdown = async {
            // Without a signal handler the server runs until killed.
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::target::run(listener, app.clone(), shutdown).await;
        println!("engine serve: stopping, flushing the event log");
        Ok(())
    })?;
    Ok(0)
}

/// The reference server running beside a test (`engine run --serve`), on a free port of
/// 127.0.0.1 with an in-memory log; it stops when dropped.
pub struct Background {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Session TTL and bounce TTL shrink with the test's time scale, so a scaled-down run
    /// sees sessions expire on the same schedule relative to its sleeps.
    pub fn start(time_scale: f64) -> Result<Background> {
        let bounce_ttl = std::time::Duration::from_secs(1800).div_f64(time_scale);
        let session_ttl = std::time::Duration::from_secs(60).div_f64(time_scale);
        let app = crate::target::open(None, bounce_ttl, session_ttl).map_err(Error::generic)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::generic(format!("--serve: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::generic(e.to_string()))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::generic(e.to_string()))?
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for --serve");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                    crate::target::run(listener, app, async {
                        let _ = rx.await;
                    })
                    .await;
                });
            })
            .map_err(|e| Error::generic(e.to_string()))?;
        Ok(Background {
            url,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
