//! Opening a connection, one timed phase at a time: DNS lookup (k6's `hosts` map first, then a
//! process-wide cache), TCP connect, TLS handshake with ALPN. The stream it returns notes
//! when the last request byte was written and the first response byte read, which gives
//! HTTP/1.1 its sending and waiting phases.

use super::error::ErrorCode;
use super::tls::{version_name, Tls};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a DNS answer is reused (k6's default `dns.ttl` is 5m).
const DNS_TTL: Duration = Duration::from_secs(300);

/// Addresses of a name and when they were looked up.
type Answer = (Vec<SocketAddr>, Instant);

/// Name resolution with k6's `hosts` overrides and a cache shared by every worker.
#[derive(Default)]
pub struct Resolver {
    /// "name" -> ip or "name:port" -> ip:port, as k6's `hosts` option.
    hosts: HashMap<String, String>,
    cache: Mutex<HashMap<(String, u16), Answer>>,
}

impl Resolver {
    pub fn new(hosts: HashMap<String, String>) -> Result<Resolver, String> {
        for (name, target) in &hosts {
            if target.parse::<IpAddr>().is_err() && target.parse::<SocketAddr>().is_err() {
                return Err(format!(
                    "option hosts: {name:?} maps to {target:?}, which is not an IP address or IP:port"
                ));
            }
        }
        Ok(Resolver {
            hosts,
            cache: Mutex::default(),
        })
    }

    /// Addresses for host:port; the bool says whether a lookup went to the system resolver.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<(Vec<SocketAddr>, bool), String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok((vec![SocketAddr::new(ip, port)], false));
        }
        let with_port = format!("{host}:{port}");
        if let Some(t) = self.hosts.get(&with_port).or_else(|| self.hosts.get(host)) {
            let addr = t
                .parse::<SocketAddr>()
                .or_else(|_| t.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, port)))
                .map_err(|e| e.to_string())?;
            return Ok((vec![addr], false));
        }
        let key = (host.to_string(), port);
        if let Some((addrs, at)) = self.cache.lock().expect("dns cache").get(&key) {
            if at.elapsed() < DNS_TTL {
                return Ok((addrs.clone(), false));
            }
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| e.to_string())?
            .collect();
        if addrs.is_empty() {
            return Err("no addresses".into());
        }
        self.cache
            .lock()
            .expect("dns cache")
            .insert(key, (addrs.clone(), Instant::now()));
        Ok((addrs, true))
    }
}

/// A plain or TLS connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Write/read instants of a connection, in nanoseconds since `base` (0 = not yet).
pub struct IoClock {
    base: Instant,
    last_write: AtomicU64,
    first_read: AtomicU64,
}

impl IoClock {
    fn new() -> IoClock {
        IoClock {
            base: Instant::now(),
            last_write: AtomicU64::new(0),
            first_read: AtomicU64::new(0),
        }
    }

    /// Forgets the previous exchange (call before sending a request).
    pub fn reset(&self) {
        self.last_write.store(0, Ordering::Relaxed);
        self.first_read.store(0, Ordering::Relaxed);
    }

    fn stamp(&self, slot: &AtomicU64) {
        let ns = self.base.elapsed().as_nanos() as u64;
        slot.store(ns.max(1), Ordering::Relaxed);
    }

    fn at(&self, slot: &AtomicU64) -> Option<Instant> {
        match slot.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.base + Duration::from_nanos(ns)),
        }
    }

    /// When the request's last byte went out.
    pub fn last_write(&self) -> Option<Instant> {
        self.at(&self.last_write)
    }

    /// When the response's first byte came in (after the request was written).
    pub fn first_read(&self) -> Option<Instant> {
        self.at(&self.first_read)
    }
}

/// A stream that stamps its [`IoClock`].
pub struct Timed {
    inner: Stream,
    clock: Arc<IoClock>,
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if buf.filled().len() > before
            && this.clock.first_read.load(Ordering::Relaxed) == 0
            && this.clock.last_write.load(Ordering::Relaxed) != 0
        {
            this.clock.stamp(&this.clock.first_read);
        }
        r
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.stamp(&this.clock.last_write);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.stamp(&this.clock.last_write);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A new connection and what it cost.
pub struct Dialed {
    pub stream: Timed,
    pub clock: Arc<IoClock>,
    /// The server chose HTTP/2 by ALPN.
    pub h2: bool,
    pub tls_version: &'static str,
    pub looking_up: Duration,
    pub connecting: Duration,
    pub tls_handshaking: Duration,
}

/// Resolves, connects and (for https) shakes hands; each phase's error has k6's code.
pub async fn dial(
    resolver: &Resolver,
    tls: &Tls,
    https: bool,
    host: &str,
    port: u16,
    url: &str,
) -> Result<Dialed, ErrorCode> {
    let t0 = Instant::now();
    let (addrs, looked_up) = resolver.resolve(host, port).await.map_err(|e| ErrorCode {
        code: 1101,
        message: format!("lookup {host}: {e}"),
    })?;
    // Only a real lookup counts as one; an IP, a hosts entry or a cached answer is 0.
    let t1 = if looked_up { Instant::now() } else { t0 };
    let mut last_err = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let tcp = match tcp {
        Some(s) => s,
        None => {
            let e = last_err.unwrap_or_else(|| io::Error::other("no address"));
            return Err(super::error::classify_dial(&e, url));
        }
    };
    let _ = tcp.set_nodelay(true);
    let t2 = Instant::now();
    let clock = Arc::new(IoClock::new());
    if !https {
        return Ok(Dialed {
            stream: Timed {
                inner: Stream::Plain(tcp),
                clock: clock.clone(),
            },
            clock,
            h2: false,
            tls_version: "",
            looking_up: t1 - t0,
            connecting: t2 - t1,
            tls_handshaking: Duration::ZERO,
        });
    }
    let cfg = tls.config_for(host).map_err(|message| ErrorCode {
        code: 1300,
        message,
    })?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name =
        rustls::pki_types::ServerName::try_from(bare.to_string()).map_err(|e| ErrorCode {
            code: 1020,
            message: format!("invalid URL {url:?}: {e}"),
        })?;
    let tls_stream = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| super::error::classify_tls(&e, host))?;
    let (_, session) = tls_stream.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let tls_version = version_name(session.protocol_version());
    Ok(Dialed {
        stream: Timed {
            inner: Stream::Tls(Box::new(tls_stream)),
            clock: clock.clone(),
        },
        clock,
        h2,
        tls_version,
        looking_up: t1 - t0,
        connecting: t2 - t1,
        tls_handshaking: t2.elapsed(),
    })
}
