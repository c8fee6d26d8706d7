//! Keep-alive connections by origin. HTTP/1.1 connections (our own, h1.rs) carry one request
//! at a time and go back to the idle list after their response; an HTTP/2 connection (hyper's)
//! is shared by every request to its origin (multiplexed). Owning the pool (instead of hyper-util's) is what
//! lets each request know whether it paid for a new connection, and how much.

use super::connect::{dial, Resolver};
use super::error::ErrorCode;
use super::h1::H1Conn;
use super::tls::Tls;
use crate::fasthash::FastMap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub type Body = Full<Bytes>;

/// scheme is https, host, port.
pub type Origin = (bool, Rc<str>, u16);

/// A connection ready to carry one request.
pub enum Sender {
    H1(H1Conn),
    H2(http2::SendRequest<Body>),
}

/// What a request learns about the connection it used.
#[derive(Clone, Copy)]
pub struct ConnInfo {
    pub h2: bool,
    pub tls_version: &'static str,
}

/// The set-up a request paid for (all zero on a reused connection, as in k6).
#[derive(Default, Clone, Copy)]
pub struct SetupCost {
    pub looking_up: Duration,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
}

pub struct Checkout {
    pub sender: Sender,
    pub info: ConnInfo,
    pub cost: SetupCost,
    pub reused: bool,
}

/// Shared settings of every pool in the run.
pub struct Net {
    pub resolver: Resolver,
    pub tls: Arc<Tls>,
    /// Speak HTTP/2 without TLS from the first byte (h2c with prior knowledge).
    pub h2c: bool,
}

type IdleH1 = (H1Conn, ConnInfo);

pub struct Pool {
    net: Arc<Net>,
    idle: RefCell<FastMap<Origin, Vec<IdleH1>>>,
    h2: RefCell<FastMap<Origin, (http2::SendRequest<Body>, ConnInfo)>>,
    /// What each origin spoke on its last new connection (absent: not known yet).
    speaks_h2: RefCell<FastMap<Origin, bool>>,
    /// Held while the first connection to an origin that may speak HTTP/2 is set up, so
    /// that the VUs starting together share it instead of each opening their own.
    first_dial: RefCell<FastMap<Origin, Rc<tokio::sync::Mutex<()>>>>,
    /// Idle HTTP/1.1 connections kept per origin; 0 closes each after its request.
    max_idle: usize,
}

impl Pool {
    pub fn new(net: Arc<Net>, max_idle: usize) -> Pool {
        Pool {
            net,
            idle: RefCell::default(),
            h2: RefCell::default(),
            speaks_h2: RefCell::default(),
            first_dial: RefCell::default(),
            max_idle,
        }
    }

    /// A connection to `origin`: a pooled one if there is one, else a new one.
    pub async fn checkout(&self, origin: &Origin, url: &str) -> Result<Checkout, ErrorCode> {
        if self.max_idle == 0 {
            return self.open(origin, url).await;
        }
        if let Some(c) = self.reuse(origin).await {
            return Ok(c);
        }
        let maybe_h2 = match self.speaks_h2.borrow().get(origin) {
            Some(&known) => known,
            None => origin.0 || self.net.h2c,
        };
        if !maybe_h2 {
            return self.open(origin, url).await;
        }
        let lock = self
            .first_dial
            .borrow_mut()
            .entry(origin.clone())
            .or_default()
            .clone();
        let _turn = lock.lock().await;
        // Whoever held the lock before may have opened the shared connection.
        if let Some(c) = self.reuse_h2(origin).await {
            return Ok(c);
        }
        let c = self.open(origin, url).await?;
        self.speaks_h2
            .borrow_mut()
            .insert(origin.clone(), c.info.h2);
        Ok(c)
    }

    async fn reuse_h2(&self, origin: &Origin) -> Option<Checkout> {
        let h2 = self.h2.borrow().get(origin).cloned();
        let (mut s, info) = h2?;
        if s.ready().await.is_ok() {
            return Some(reused(Sender::H2(s), info));
        }
        self.h2.borrow_mut().remove(origin);
        None
    }

    async fn reuse(&self, origin: &Origin) -> Option<Checkout> {
        if let Some(c) = self.reuse_h2(origin).await {
            return Some(c);
        }
        self.pop_idle_h1(origin)
    }

    /// The newest live idle HTTP/1.1 connection to `origin`; ones the server closed while
    /// they idled are dropped.
    fn pop_idle_h1(&self, origin: &Origin) -> Option<Checkout> {
        loop {
            let next = self.idle.borrow_mut().get_mut(origin).and_then(Vec::pop);
            let (mut c, info) = next?;
            if !c.is_dead() {
                return Some(reused(Sender::H1(c), info));
            }
        }
    }

    /// An idle HTTP/1.1 connection to `origin`, taken without awaiting anything: the
    /// usual case of a request, kept out of the (boxed) future that may have to dial.
    /// None when the origin speaks HTTP/2 here or no live idle connection is left.
    pub fn reuse_h1_now(&self, origin: &Origin) -> Option<Checkout> {
        if self.max_idle == 0 || self.h2.borrow().contains_key(origin) {
            return None;
        }
        self.pop_idle_h1(origin)
    }

    /// Opens a new connection (never pooled first: the caller retries a stale reuse here).
    pub async fn open(&self, origin: &Origin, url: &str) -> Result<Checkout, ErrorCode> {
        let (https, host, port) = origin;
        let d = dial(&self.net.resolver, &self.net.tls, *https, host, *port, url).await?;
        let cost = SetupCost {
            looking_up: d.looking_up,
            connecting: d.connecting,
            tls_handshaking: d.tls_handshaking,
        };
        if d.h2 || (self.net.h2c && !https) {
            let io = TokioIo::new(d.stream);
            let handshake_err = |e: hyper::Error| ErrorCode {
                code: 1000,
                message: format!("{url}: connection set-up failed: {e}"),
            };
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(handshake_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let info = ConnInfo {
                h2: true,
                tls_version: d.tls_version,
            };
            if self.max_idle > 0 {
                self.h2
                    .borrow_mut()
                    .insert(origin.clone(), (sender.clone(), info));
            }
            return Ok(Checkout {
                sender: Sender::H2(sender),
                info,
                cost,
                reused: false,
            });
        }
        Ok(Checkout {
            sender: Sender::H1(H1Conn::new(d.stream)),
            info: ConnInfo {
                h2: false,
                tls_version: d.tls_version,
            },
            cost,
            reused: false,
        })
    }

    /// Hands an HTTP/1.1 connection back after its response was read to the end (and
    /// the server did not ask to close it).
    pub fn checkin(&self, origin: &Origin, conn: H1Conn, info: ConnInfo) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(origin.clone()).or_default();
        if list.len() < self.max_idle {
            list.push((conn, info));
        }
    }
}

fn reused(sender: Sender, info: ConnInfo) -> Checkout {
    Checkout {
        sender,
        info,
        cost: SetupCost::default(),
        reused: true,
    }
}
