//! Transport errors mapped to k6's error codes and messages (k6 docs: "Error codes").

/// A k6 error code with its message (the `error` and `error_code` fields of a response).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorCode {
    pub code: u32,
    pub message: String,
}

/// k6: 1000 generic, 1020 invalid URL, 1050 request timeout, 1101 no IP for host,
/// 1210 dial error, 1211 dial timeout, 1212 connection refused, 1220 reset by peer,
/// 1201 broken pipe.
pub fn classify(err: &(dyn std::error::Error + 'static), url: &str) -> ErrorCode {
    let chain = chain_text(err);
    let lower = chain.to_lowercase();
    let io_kind = io_error_kind(err);
    let is_connect =
        lower.contains("client error (connect)") || lower.contains("tcp connect error");
    let (code, message) = if matches!(io_kind, Some(std::io::ErrorKind::TimedOut)) {
        (
            if is_connect { 1211 } else { 1050 },
            "request timeout".to_string(),
        )
    } else if lower.contains("relative url") || lower.contains("invalid url") {
        (1020, format!("invalid URL {url:?}"))
    } else if lower.contains("too many open files") {
        (
            1210,
            format!("dial {url}: too many open files (raise `ulimit -n` or use fewer connections)"),
        )
    } else if lower.contains("cannot assign requested address")
        || lower.contains("address not available")
    {
        (
            1210,
            format!("dial {url}: out of local ports (cannot assign requested address)"),
        )
    } else if matches!(io_kind, Some(std::io::ErrorKind::ConnectionRefused))
        || lower.contains("connection refused")
    {
        (1212, format!("dial {url}: connect: connection refused"))
    } else if matches!(io_kind, Some(std::io::ErrorKind::ConnectionReset))
        || lower.contains("connection reset")
    {
        (1220, format!("read {url}: connection reset by peer"))
    } else if matches!(io_kind, Some(std::io::ErrorKind::BrokenPipe))
        || lower.contains("broken pipe")
    {
        (1201, format!("write {url}: broken pipe"))
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        (1101, format!("lookup {url}: no such host"))
    } else if is_connect {
        (1210, format!("dial {url}: {}", last_cause(err)))
    } else if lower.contains("connection closed")
        || lower.contains("incomplete message")
        || lower.contains("unexpected eof")
    {
        (
            1000,
            format!("{url}: EOF (the server closed the connection)"),
        )
    } else {
        (1000, last_cause(err))
    };
    ErrorCode { code, message }
}

fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

fn last_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn io_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// A failed TCP connect, k6's way (the message names the URL).
pub fn classify_dial(err: &std::io::Error, url: &str) -> ErrorCode {
    let mut e = classify(err, url);
    if e.code == 1000 {
        e = ErrorCode {
            code: 1210,
            message: format!("dial {url}: {err}"),
        };
    }
    e
}

/// A failed TLS handshake: k6's 1311 (unknown authority), 1320 (wrong name), else 1300.
pub fn classify_tls(err: &std::io::Error, host: &str) -> ErrorCode {
    use rustls::CertificateError as C;
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(C::UnknownIssuer)) => ErrorCode {
            code: 1311,
            message: format!(
                "tls: failed to verify certificate: x509: certificate signed by unknown authority (host {host}; trust its CA with --tls-ca or skip with --insecure-skip-tls-verify)"
            ),
        },
        Some(rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        )) => ErrorCode {
            code: 1320,
            message: format!("tls: failed to verify certificate: x509: certificate is not valid for {host}"),
        },
        Some(e) => ErrorCode {
            code: 1300,
            message: format!("tls: {e} (host {host})"),
        },
        None => {
            let mut e = classify(err, host);
            if e.code == 1000 {
                e.code = 1300;
                e.message = format!("tls handshake with {host}: {err}");
            }
            e
        }
    }
}
