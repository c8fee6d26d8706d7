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
