//! HTTP/1.1 driven by the request's own task: write the request, read the response head
//! and body off the socket, hand the connection back. hyper's client runs each connection
//! as a separate task fed through a channel; on the POST loop that hop (channel, waker,
//! second task poll, header map) was about a quarter of the engine's user CPU. HTTP/2 still
//! goes through hyper (see pool.rs).
//!
//! Framing follows RFC 9112 section 6.3: no body after HEAD, 1xx, 204 and 304; chunked when
//! Transfer-Encoding says so; else Content-Length; else until the server closes.

use super::connect::Stream;
use super::types::Headers;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `fut`'s output, or None if `timer` fires first. Not tokio's `Timeout`: the steps of one
/// exchange share a timer, registered at most once.
fn until<'a, F: Future>(
    mut fut: Pin<&'a mut F>,
    mut timer: Pin<&'a mut Sleep>,
) -> impl Future<Output = Option<F::Output>> + 'a {
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
}

/// A response head larger than this is refused (hyper's default is ~400 KB; 64 KB is
/// Go's and nginx's order of magnitude).
const MAX_HEAD: usize = 64 * 1024;
const INITIAL_BUFFER: usize = 4096;
/// A read buffer grown past this by a large response is freed, not kept for reuse.
const SPARE_BUFFER_MAX: usize = 64 * 1024;
/// Read buffers kept per thread for the next exchange.
const SPARES_MAX: usize = 256;

thread_local! {
    /// Read buffers of connections that are not in an exchange. An idle keep-alive
    /// connection holds no buffer, only a request in flight does: under the per-VU
    /// connection policy 25,000 idle connections held 100 MB of them.
    static SPARES: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_spare() -> Vec<u8> {
    SPARES
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(INITIAL_BUFFER))
}

fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SPARE_BUFFER_MAX {
        return;
    }
    buf.clear();
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES_MAX {
            s.push(buf);
        }
    });
}

/// An open HTTP/1.1 connection and, during an exchange, its read buffer.
pub struct H1Conn {
    io: Stream,
    /// Empty (no allocation) between exchanges; see `SPARES`.
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
}

/// Why an exchange failed. `nothing_read`: before any byte of a response came back.
#[derive(Debug)]
pub enum H1Error {
    /// Not a byte of the request was written: it can be sent again on another connection
    /// whatever its method.
    NotSent(io::Error),
    Io {
        err: io::Error,
        nothing_read: bool,
    },
    /// The server closed the connection.
    Closed {
        nothing_read: bool,
    },
    Malformed(String),
}

impl H1Error {
    /// Nothing of the request reached the connection.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, H1Error::NotSent(_))
    }

    /// The connection closed (or was reset) before any byte of a response: a kept-alive
    /// connection the server closed meanwhile. The server may or may not have read the
    /// request, so only a request that is safe to repeat may be sent again (RFC 9110 9.2.2).
    pub fn stale(&self) -> bool {
        match self {
            H1Error::NotSent(_) => true,
            H1Error::Closed { nothing_read } => *nothing_read,
            H1Error::Io { err, nothing_read } => {
                *nothing_read
                    && matches!(
                        err.kind(),
                        io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::UnexpectedEof
                    )
            }
            H1Error::Malformed(_) => false,
        }
    }
}

fn io_err(nothing_read: bool) -> impl FnOnce(io::Error) -> H1Error {
    move |err| H1Error::Io { err, nothing_read }
}

/// What the request learns: the head, the body (None when discarded) and its instants.
pub struct Exchange {
    pub status: u16,
    pub http10: bool,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    /// Bytes written and read, as on the wire before TLS.
    pub sent: u64,
    pub received: u64,
    pub written_at: Instant,
    pub first_byte_at: Instant,
    /// The connection may carry another request.
    pub reusable: bool,
}

/// How the body of a response is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl H1Conn {
    pub fn new(io: Stream) -> H1Conn {
        H1Conn {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Whether an idle connection is unusable: the server closed it (or sent something
    /// unasked). Checked without waiting.
    pub fn is_dead(&mut self) -> bool {
        if self.pos < self.buf.len() {
            return true;
        }
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        // Ready means EOF, an error, or bytes nobody asked for.
        std::pin::Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut rb)
            .is_ready()
    }

    /// Sends `head` then `req_body`, reads the response; None if `timer` (the request's
    /// deadline) fires first. `keep_body` false counts the body without keeping it;
    /// `head_request` is a HEAD (no body follows whatever the headers say).
    ///
    /// Three steps under the one timer. The wait for the server (the middle one, most of a
    /// request's life in flight) holds only this connection: the reading state is boxed and
    /// made once bytes are there, and `head` is freed once written (a stale-connection retry
    /// makes it again), so that the thousands of requests a slow server holds at once carry
    /// neither.
    ///
    /// A plain fn returning an async block: an async fn stores its arguments twice
    /// (rust-lang/rust#62958).
    #[allow(clippy::manual_async_fn)]
    pub fn exchange<'a>(
        &'a mut self,
        head: Vec<u8>,
        req_body: &'a [u8],
        head_request: bool,
        keep_body: bool,
        mut timer: Pin<&'a mut Sleep>,
    ) -> impl Future<Output = Option<Result<Exchange, H1Error>>> + 'a {
        async move {
            let sent = (head.len() + req_body.len()) as u64;
            {
                let mut done = 0;
                let write = pin!(std::future::poll_fn(|cx| {
                    self.poll_write_request(cx, &head, req_body, &mut done)
                }));
                if let Err(e) = until(write, timer.as_mut()).await? {
                    return Some(Err(e));
                }
            }
            drop(head);
            let written_at = Instant::now();
            {
                let ready = pin!(std::future::poll_fn(|cx| self.poll_response_ready(cx)));
                until(ready, timer.as_mut()).await?;
            }
            let mut read = Box::pin(self.read_response(head_request, keep_body, sent, written_at));
            until(read.as_mut(), timer).await
        }
    }

    /// Writes `head` then `req_body` from byte `*done` on (the caller keeps the count across
    /// polls: a poll function instead of an async fn, so that a request in flight carries a
    /// counter, not a write future), then flushes. Nothing written yet is `NotSent`.
    fn poll_write_request(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
        req_body: &[u8],
        done: &mut usize,
    ) -> Poll<Result<(), H1Error>> {
        let failed = |err: io::Error, done: usize| {
            if done == 0 {
                H1Error::NotSent(err)
            } else {
                H1Error::Io {
                    err,
                    nothing_read: true,
                }
            }
        };
        loop {
            let rest = match head.get(*done..) {
                Some(h) if !h.is_empty() => h,
                _ => &req_body[(*done - head.len()).min(req_body.len())..],
            };
            if rest.is_empty() {
                return std::pin::Pin::new(&mut self.io)
                    .poll_flush(cx)
                    .map_err(io_err(true));
            }
            match std::pin::Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(failed(io::ErrorKind::WriteZero.into(), *done)))
                }
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(failed(e, *done))),
            }
        }
    }

    /// Ready once the socket has something to read (a response, its end, or an error):
    /// the wait for the server, which is most of a request's life in flight, needs no more
    /// than this connection and a waker. Spurious readiness only means `read_response`
    /// waits instead.
    fn poll_response_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.io.poll_read_ready(cx).map(|_| ())
    }

    /// Reads the response to the request written at `written_at` (`sent` bytes).
    async fn read_response(
        &mut self,
        head_request: bool,
        keep_body: bool,
        sent: u64,
        written_at: Instant,
    ) -> Result<Exchange, H1Error> {
        self.buf.clear();
        self.pos = 0;
        let mut received = 0u64;
        let mut first_byte_at = None;
        // Interim 1xx responses (100 Continue, 103 Early Hints) are skipped.
        let head_in = loop {
            let h = self.read_head(&mut received, &mut first_byte_at).await?;
            if (100..200).contains(&h.status) && h.status != 101 {
                continue;
            }
            break h;
        };
        let framing = if head_request || matches!(head_in.status, 204 | 304 | 101) {
            Framing::None
        } else {
            head_in.framing
        };
        let mut body = keep_body.then(Vec::new);
        let until_close = matches!(framing, Framing::UntilClose);
        match framing {
            Framing::None => {}
            Framing::Length(n) => self.read_length(n, &mut body, &mut received).await?,
            Framing::Chunked => self.read_chunked(&mut body, &mut received).await?,
            Framing::UntilClose => self.read_to_close(&mut body, &mut received).await?,
        }
        let reusable =
            !head_in.close && !until_close && head_in.status != 101 && self.pos == self.buf.len();
        give_back(std::mem::take(&mut self.buf));
        self.pos = 0;
        Ok(Exchange {
            status: head_in.status,
            http10: head_in.http10,
            headers: head_in.headers,
            body,
            sent,
            received,
            written_at,
            // read_head reads at least once (the buffer was just cleared).
            first_byte_at: first_byte_at.unwrap_or(written_at),
            reusable,
        })
    }

    /// Reads more bytes into the buffer; Ok(0) is the end of the stream. A buffer with
    /// nothing unread in it is held only while a read finds bytes: a request waiting for
    /// its response holds none (at full-journey's peak thousands wait at once).
    async fn fill(&mut self, received: &mut u64) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let n = std::future::poll_fn(|cx| {
            if self.buf.capacity() == 0 {
                self.buf = take_spare();
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(self.buf.capacity().max(INITIAL_BUFFER));
            }
            let len = self.buf.len();
            let mut rb = ReadBuf::uninit(self.buf.spare_capacity_mut());
            match std::pin::Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                std::task::Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    // SAFETY: poll_read initialised the first `n` bytes of the spare capacity.
                    unsafe { self.buf.set_len(len + n) };
                    std::task::Poll::Ready(Ok(n))
                }
                std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => {
                    if self.buf.is_empty() {
                        give_back(std::mem::take(&mut self.buf));
                    }
                    std::task::Poll::Pending
                }
            }
        })
        .await?;
        *received += n as u64;
        Ok(n)
    }

    async fn read_head(
        &mut self,
        received: &mut u64,
        first_byte_at: &mut Option<Instant>,
    ) -> Result<Head, H1Error> {
        loop {
            if self.pos < self.buf.len() {
                if let Some(h) = parse_head(&self.buf[self.pos..])? {
                    self.pos += h.len;
                    return Ok(h);
                }
                if self.buf.len() - self.pos > MAX_HEAD {
                    return Err(H1Error::Malformed(format!(
                        "response head larger than {MAX_HEAD} bytes"
                    )));
                }
            }
            let before = *received;
            let n = self.fill(received).await.map_err(io_err(before == 0))?;
            if n == 0 {
                return Err(H1Error::Closed {
                    nothing_read: before == 0,
                });
            }
            first_byte_at.get_or_insert_with(Instant::now);
        }
    }

    /// Takes up to `want` buffered bytes into the body, reading more if none are buffered.
    async fn take(
        &mut self,
        want: u64,
        body: &mut Option<Vec<u8>>,
        received: &mut u64,
    ) -> Result<u64, H1Error> {
        if self.pos == self.buf.len() && self.fill(received).await.map_err(io_err(false))? == 0 {
            return Err(H1Error::Closed {
                nothing_read: false,
            });
        }
        let n = (self.buf.len() - self.pos).min(want.min(usize::MAX as u64) as usize);
        if let Some(b) = body {
            b.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        }
        self.pos += n;
        Ok(n as u64)
    }

    async fn read_length(
        &mut self,
        mut left: u64,
        body: &mut Option<Vec<u8>>,
        received: &mut u64,
    ) -> Result<(), H1Error> {
        if let Some(b) = body {
            // A hostile Content-Length must not reserve gigabytes up front.
            b.reserve(left.min(1 << 20) as usize);
        }
        while left > 0 {
            left -= self.take(left, body, received).await?;
        }
        Ok(())
    }

    async fn read_to_close(
        &mut self,
        body: &mut Option<Vec<u8>>,
        received: &mut u64,
    ) -> Result<(), H1Error> {
        loop {
            match self.take(u64::MAX, body, received).await {
                Ok(_) => {}
                Err(H1Error::Closed { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// A line (without CRLF) from the buffer, reading more as needed.
    async fn line(&mut self, received: &mut u64) -> Result<Vec<u8>, H1Error> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                return Ok(strip_cr(line));
            }
            if self.buf.len() - self.pos > 4096 {
                return Err(H1Error::Malformed("chunk line too long".into()));
            }
            if self.fill(received).await.map_err(io_err(false))? == 0 {
                return Err(H1Error::Closed {
                    nothing_read: false,
                });
            }
        }
    }

    async fn read_chunked(
        &mut self,
        body: &mut Option<Vec<u8>>,
        received: &mut u64,
    ) -> Result<(), H1Error> {
        loop {
            let line = self.line(received).await?;
            let size_text = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let size_text = std::str::from_utf8(size_text).unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16).map_err(|_| {
                H1Error::Malformed(format!(
                    "bad chunk size {:?}",
                    String::from_utf8_lossy(&line)
                ))
            })?;
            if size == 0 {
                // Trailers (ignored) up to the empty line.
                while !self.line(received).await?.is_empty() {}
                return Ok(());
            }
            self.read_length(size, body, received).await?;
            if !self.line(received).await?.is_empty() {
                return Err(H1Error::Malformed("missing CRLF after a chunk".into()));
            }
        }
    }
}

/// A parsed response head.
struct Head {
    status: u16,
    http10: bool,
    headers: Headers,
    framing: Framing,
    /// The server will close after this response.
    close: bool,
    /// Bytes of the head.
    len: usize,
}

/// Parses a complete head, or None when more bytes are needed.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, H1Error> {
    use std::mem::MaybeUninit;
    let config = httparse::ParserConfig::default();
    // Uninitialised slots: zeroing 64 headers per response cost more than parsing them.
    let mut storage: [MaybeUninit<httparse::Header>; 64] = [const { MaybeUninit::uninit() }; 64];
    let mut big;
    let mut res = httparse::Response::new(&mut []);
    let len = match config.parse_response_with_uninit_headers(&mut res, bytes, &mut storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            big = vec![httparse::EMPTY_HEADER; 1024];
            res = httparse::Response::new(&mut big);
            match res.parse(bytes) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(H1Error::Malformed(format!("bad response head: {e}"))),
            }
        }
        Err(e) => return Err(H1Error::Malformed(format!("bad response head: {e}"))),
    };
    let status = res.code.unwrap_or(0);
    let http10 = res.version == Some(0);
    let mut close = http10;
    let mut length = None;
    let mut chunked = false;
    for h in res.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| H1Error::Malformed("bad Content-Length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(H1Error::Malformed("conflicting Content-Length".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only counts as the last encoding (RFC 9112 6.1).
            chunked = String::from_utf8_lossy(h.value)
                .rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            let has = |token: &[u8]| {
                h.value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            };
            if has(b"close") {
                close = true;
            } else if has(b"keep-alive") {
                close = false;
            }
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    };
    Ok(Some(Head {
        status,
        http10,
        headers: Headers::from_pairs(res.headers.iter().map(|h| (h.name, h.value))),
        framing,
        close,
        len,
    }))
}

fn strip_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    impl H1Conn {
        /// The exchange under a deadline a minute away, as the tests call it.
        async fn exchange_now(
            &mut self,
            head: &[u8],
            req_body: &[u8],
            head_request: bool,
            keep_body: bool,
        ) -> Result<Exchange, H1Error> {
            let timer = pin!(tokio::time::sleep(std::time::Duration::from_secs(60)));
            self.exchange(head.to_vec(), req_body, head_request, keep_body, timer)
                .await
                .expect("answered within a minute")
        }
    }

    /// Serves one connection: for each canned response, reads a request head, then writes
    /// the response in `pieces` (to exercise partial reads). Returns the client connection.
    async fn serve(responses: Vec<Vec<u8>>, piece: usize) -> H1Conn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for r in responses {
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut b = [0u8; 1024];
                    let n = s.read(&mut b).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&b[..n]);
                }
                for chunk in r.chunks(piece) {
                    s.write_all(chunk).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            // Then close: the next request finds the connection closed.
        });
        H1Conn::new(Stream::Plain(TcpStream::connect(addr).await.unwrap()))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A request waiting for its response holds no read buffer: the one its first read
    /// tried is back among the thread's spares while it waits.
    #[test]
    fn a_request_waiting_for_its_response_holds_no_buffer() {
        rt().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (answer, answered) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await.unwrap();
                answered.await.unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .unwrap();
            });
            let mut c = H1Conn::new(Stream::Plain(TcpStream::connect(addr).await.unwrap()));
            SPARES.with(|s| s.borrow_mut().clear());
            let spares = || SPARES.with(|s| s.borrow().len());
            let mut call = Box::pin(c.exchange_now(GET, b"", false, true));
            let waited =
                tokio::time::timeout(std::time::Duration::from_millis(50), call.as_mut()).await;
            assert!(waited.is_err(), "the server has not answered yet");
            // It waits for readiness before it reads: no buffer was taken at all (an
            // earlier design took one, read nothing, and gave it back).
            assert_eq!(spares(), 0, "the waiting request took no buffer");
            answer.send(()).unwrap();
            let ex = call.await.unwrap();
            assert_eq!(ex.body.as_deref(), Some(&b"ok"[..]));
            assert_eq!(spares(), 1, "and the exchange gave it back at its end");
        });
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n";

    #[test]
    fn framings_and_keep_alive() {
        rt().block_on(async {
            let responses: Vec<Vec<u8>> = vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello".to_vec(),
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n".to_vec(),
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n".to_vec(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n".to_vec(), // answer to HEAD
                b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ];
            let sizes: Vec<usize> = responses.iter().map(Vec::len).collect();
            // Byte by byte, then all at once: framing must not depend on how reads split.
            for piece in [1, 4096] {
                let mut c = serve(responses.clone(), piece).await;
                let x = c.exchange_now(GET, b"", false, true).await.unwrap();
                assert_eq!((x.status, x.body.as_deref()), (200, Some(&b"hello"[..])));
                assert_eq!(x.headers.get("x-a"), Some(&b"1"[..]));
                assert!(x.reusable);
                assert_eq!(x.received, sizes[0] as u64);
                assert_eq!(x.sent, GET.len() as u64);
                let x = c.exchange_now(GET, b"", false, true).await.unwrap();
                assert_eq!(x.body.as_deref(), Some(&b"abcdefg"[..]));
                assert!(x.reusable);
                let x = c.exchange_now(GET, b"", false, true).await.unwrap();
                assert_eq!((x.status, x.body.as_deref()), (201, Some(&b"ok"[..])));
                let x = c.exchange_now(GET, b"", false, true).await.unwrap();
                assert_eq!((x.status, x.body.as_deref()), (204, Some(&b""[..])));
                let x = c.exchange_now(HEAD, b"", true, true).await.unwrap();
                assert_eq!((x.status, x.body.as_deref()), (200, Some(&b""[..])));
                assert!(x.reusable);
                let x = c.exchange_now(GET, b"", false, false).await.unwrap();
                let cookies: Vec<_> = x.headers.iter().filter(|(k, _)| *k == "set-cookie").collect();
                assert_eq!(cookies.len(), 2);
                assert_eq!(x.body, None);
                // The server closed after its last answer: nothing read, so a retry is in order.
                let e = c.exchange_now(GET, b"", false, true).await.err().unwrap();
                assert!(e.stale(), "{e:?}");
            }
        });
    }

    #[test]
    fn close_delimited_http10_and_connection_close() {
        rt().block_on(async {
            let mut c = serve(vec![b"HTTP/1.0 200 OK\r\n\r\nto the end".to_vec()], 3).await;
            let x = c.exchange_now(GET, b"", false, true).await.unwrap();
            assert_eq!(x.body.as_deref(), Some(&b"to the end"[..]));
            assert!(x.http10 && !x.reusable);
            let mut c = serve(
                vec![
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx".to_vec(),
                ],
                4096,
            )
            .await;
            let x = c.exchange_now(GET, b"", false, true).await.unwrap();
            assert!(!x.reusable);
        });
    }

    #[test]
    fn malformed_and_truncated_responses_are_errors() {
        rt().block_on(async {
            let mut c = serve(vec![b"HTTP/1.1 2OO OK\r\n\r\n".to_vec()], 4096).await;
            let e = c.exchange_now(GET, b"", false, true).await.err().unwrap();
            assert!(matches!(e, H1Error::Malformed(_)), "{e:?}");
            let mut c = serve(
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec()],
                4096,
            )
            .await;
            let e = c.exchange_now(GET, b"", false, true).await.err().unwrap();
            assert!(
                matches!(
                    e,
                    H1Error::Closed {
                        nothing_read: false
                    }
                ),
                "{e:?}"
            );
            assert!(!e.stale());
            let mut c = serve(
                vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()],
                4096,
            )
            .await;
            let e = c.exchange_now(GET, b"", false, true).await.err().unwrap();
            assert!(matches!(e, H1Error::Malformed(_)), "{e:?}");
        });
    }

    #[test]
    fn an_idle_connection_the_server_closed_is_dead() {
        rt().block_on(async {
            let mut c = serve(
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()],
                4096,
            )
            .await;
            c.exchange_now(GET, b"", false, true).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert!(c.is_dead());
        });
    }
}
