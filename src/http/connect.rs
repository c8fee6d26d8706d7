//! Opening a connection, one timed phase at a time: DNS lookup (k6's `hosts` map first, then a
//! process-wide cache), TCP connect, TLS handshake with ALPN.

use super::error::ErrorCode;
use super::tls::{version_name, Tls};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connect that takes longer fails with k6's 1211 (k6's dialer waits 30 s too); a
/// shorter request timeout still ends the request first, as 1050.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

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

impl Stream {
    /// Ready when the socket has bytes (or an end or an error) to read. Under TLS these
    /// are records, which may hold no application data yet: a reader must still be ready
    /// to wait.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
            Stream::Tls(s) => s.get_ref().0.poll_read_ready(cx),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut *self {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut *self {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A new connection and what it cost.
pub struct Dialed {
    pub stream: Stream,
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
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last_err = Some(e),
            Err(_) => {
                return Err(ErrorCode {
                    code: 1211,
                    message: format!("dial {url}: i/o timeout"),
                })
            }
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
    if !https {
        return Ok(Dialed {
            stream: Stream::Plain(tcp),
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
        stream: Stream::Tls(Box::new(tls_stream)),
        h2,
        tls_version,
        looking_up: t1 - t0,
        connecting: t2 - t1,
        tls_handshaking: t2.elapsed(),
    })
}
