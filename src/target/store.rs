//! The event log: every accepted event appended to SQLite by one batching writer thread.
//! A request is acknowledged only after the batch holding its event is committed (group
//! commit), so a restart loses nothing that was acknowledged.

use super::funnel::{page_index, Event, Kind, PAGES};
use crossbeam_channel::{unbounded, Receiver, Sender};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the log holds, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event(Event),
    Reset {
        day: String,
        source: Option<String>,
        at_ms: u64,
    },
}

type Ack = oneshot::Sender<Result<(), String>>;

/// Handle to the writer thread.
pub struct Store {
    tx: Option<Sender<(Record, Ack)>>,
    depth: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub location: String,
}

const MAX_BATCH: usize = 8192;

impl Store {
    /// Opens (or creates) the log; returns the store and the records already in it.
    /// Without a path the log lives in memory and ends with the process.
    pub fn open(path: Option<&Path>) -> Result<(Store, Vec<Record>), String> {
        let (conn, location) = match path {
            Some(p) => (
                Connection::open(p).map_err(|e| format!("--db {}: {e}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                Connection::open_in_memory().map_err(|e| e.to_string())?,
                "in memory".to_string(),
            ),
        };
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS events (
               seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, page TEXT,
               session TEXT, source TEXT, time_on_page REAL, day TEXT);",
        )
        .map_err(|e| format!("event log {location}: {e}"))?;
        let existing = read_all(&conn).map_err(|e| format!("event log {location}: {e}"))?;
        let (tx, rx) = unbounded();
        let depth = Arc::new(AtomicUsize::new(0));
        let d = depth.clone();
        let thread = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || write_loop(conn, rx, d))
            .map_err(|e| e.to_string())?;
        Ok((
            Store {
                tx: Some(tx),
                depth,
                thread: Some(thread),
                location,
            },
            existing,
        ))
    }

    /// Queues a record; the receiver resolves once it is committed.
    pub fn append(&self, rec: Record) -> oneshot::Receiver<Result<(), String>> {
        let (ack, done) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        let tx = self.tx.as_ref().expect("the sender lives until close()");
        if let Err(e) = tx.send((rec, ack)) {
            // The writer is gone (it failed to commit before): answer with an error.
            let _ = e
                .into_inner()
                .1
                .send(Err("event log writer stopped".into()));
        }
        done
    }

    /// Records queued but not yet committed.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Flushes what is queued and stops the writer.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(mut conn: Connection, rx: Receiver<(Record, Ack)>, depth: Arc<AtomicUsize>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(x) => batch.push(x),
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &batch).map_err(|e| format!("event log write failed: {e}"));
        if let Err(e) = &result {
            eprintln!("engine serve: {e}");
        }
        depth.fetch_sub(batch.len(), Ordering::Relaxed);
        for (_, ack) in batch {
            // A client that went away no longer waits for its answer.
            let _ = ack.send(result.clone());
        }
    }
}

fn commit(conn: &mut Connection, batch: &[(Record, Ack)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO events (at_ms, kind, page, session, source, time_on_page, day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (rec, _) in batch {
            match rec {
                Record::Event(e) => stmt.execute(params![
                    e.at_ms as i64,
                    e.kind.name(),
                    PAGES[e.page],
                    e.session,
                    e.source,
                    e.time_on_page,
                    Option::<String>::None
                ])?,
                Record::Reset { day, source, at_ms } => stmt.execute(params![
                    *at_ms as i64,
                    "reset",
                    Option::<String>::None,
                    Option::<String>::None,
                    source,
                    Option::<f64>::None,
                    day
                ])?,
            };
        }
    }
    tx.commit()
}

fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, kind, page, session, source, time_on_page, day FROM events ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        let at_ms: i64 = r.get(0)?;
        let kind: String = r.get(1)?;
        let page: Option<String> = r.get(2)?;
        let session: Option<String> = r.get(3)?;
        let source: Option<String> = r.get(4)?;
        let time_on_page: Option<f64> = r.get(5)?;
        let day: Option<String> = r.get(6)?;
        Ok((at_ms as u64, kind, page, session, source, time_on_page, day))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at_ms, kind, page, session, source, time_on_page, day) = row?;
        if kind == "reset" {
            out.push(Record::Reset {
                day: day.unwrap_or_default(),
                source,
                at_ms,
            });
            continue;
        }
        // Rows the server wrote are always valid; anything else is skipped, not fatal.
        let (Some(kind), Some(page)) = (Kind::parse(&kind), page.as_deref().and_then(page_index))
        else {
            continue;
        };
        out.push(Record::Event(Event {
            kind,
            page,
            session: session.unwrap_or_default(),
            source: source.unwrap_or_default(),
            time_on_page,
            at_ms,
        }));
    }
    Ok(out)
}
