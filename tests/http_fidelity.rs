//! HTTPS, HTTP/2, h2c, timing phases, connection policies and the fd preflight: the real
//! binary against real local servers with certificates made at test time.

mod common;
use common::{start_server, start_server_with, Wire, Workspace};
use std::sync::Arc;

/// A CA and a server certificate it signed for `localhost` and the spec's tracking host.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
    server_h1: Arc<rustls::ServerConfig>,
    /// Asks for a client certificate signed by the CA.
    server_mtls: Arc<rustls::ServerConfig>,
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "engine test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![
        "localhost".to_string(),
        "apex-tracking-worker.example".to_string(),
    ])
    .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["engine-client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = |alpn: &[&[u8]], mtls: bool| {
        let b = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let b = if mtls {
            b.with_client_cert_verifier(client_verifier.clone())
        } else {
            b.with_no_client_auth()
        };
        let mut cfg = b
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    };
    Pki {
        ca_pem: ca.pem(),
        server: config(&[b"h2", b"http/1.1"], false),
        server_h1: config(&[b"http/1.1"], false),
        server_mtls: config(&[b"http/1.1"], true),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

fn https_url(srv: &common::TestServer, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", srv.addr.port())
}

/// A script that checks each response against expectations given as Lua code.
fn probe(url: &str, options: &str, checks: &str) -> String {
    format!(
        r#"
options = {{ {options} }}
function default()
  local r = http.get("{url}")
  check(r, {{ {checks} }})
end
"#
    )
}

#[test]
fn certificates_are_verified_by_default_and_trusted_with_a_ca_or_skip_verify() {
    let pki = pki();
    let srv = start_server_with(Wire::Tls(pki.server.clone()));
    let ws = Workspace::new();
    ws.write("ca.pem", &pki.ca_pem);
    let url = https_url(&srv, "localhost", "/ok");
    ws.write(
        "untrusted.lua",
        &probe(
            &url,
            "",
            r#"["refused 1311"] = function(r) return r.status == 0 and r.error_code == 1311 end,
               ["says why"] = function(r) return r.error:find("unknown authority") ~= nil end"#,
        ),
    );
    let r = ws.run("untrusted.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("refused 1311"), (1, 0), "{}", r.stdout);
    assert_eq!(r.check("says why"), (1, 0));
    assert_eq!(srv.count("/ok"), 0);

    let ok = r#"["200 over h2"] = function(r) return r.status == 200 and r.proto == "HTTP/2.0" end,
                ["tls1.3"] = function(r) return r.tls_version == "tls1.3" end"#;
    ws.write("trusted.lua", &probe(&url, "", ok));
    let r = ws.run("trusted.lua", &["--tls-ca", "ca.pem"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("200 over h2"), (1, 0), "{}", r.stderr);
    assert_eq!(r.check("tls1.3"), (1, 0));

    ws.write("skip.lua", &probe(&url, "insecureSkipTLSVerify = true", ok));
    let r = ws.run("skip.lua", &[]);
    assert_eq!(r.check("200 over h2"), (1, 0), "{}", r.stderr);
    let r = ws.run("untrusted.lua", &["--insecure-skip-tls-verify"]);
    assert_eq!(r.check("refused 1311"), (0, 1));
    assert_eq!(srv.count("/ok"), 3);
}

#[test]
fn hosts_option_tls_version_and_http1_only_servers() {
    let pki = pki();
    let h1 = start_server_with(Wire::Tls(pki.server_h1.clone()));
    let ws = Workspace::new();
    ws.write("ca.pem", &pki.ca_pem);
    // The spec's host name, pointed at 127.0.0.1 by the hosts option (the cert names it).
    let url = https_url(&h1, "apex-tracking-worker.example", "/track");
    ws.write(
        "t.lua",
        &probe(
            &url,
            r#"hosts = { ["apex-tracking-worker.example"] = "127.0.0.1" }, tlsVersion = { max = "tls1.2" }"#,
            r#"["200"] = function(r) return r.status == 200 end,
               ["HTTP/1.1 by ALPN"] = function(r) return r.proto == "HTTP/1.1" end,
               ["tls1.2"] = function(r) return r.tls_version == "tls1.2" end,
               ["no lookup for a hosts entry"] = function(r) return r.timings.looking_up == 0 end"#,
        ),
    );
    let r = ws.run("t.lua", &["--tls-ca", "ca.pem"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in [
        "200",
        "HTTP/1.1 by ALPN",
        "tls1.2",
        "no lookup for a hosts entry",
    ] {
        assert_eq!(r.check(name), (1, 0), "{name}: {}", r.stderr);
    }
    assert_eq!(h1.count("/track"), 1);
    // A wrong host name is refused with k6's code.
    ws.write(
        "wrong.lua",
        &probe(
            &https_url(&h1, "127.0.0.1", "/track"),
            "",
            r#"["1320"] = function(r) return r.error_code == 1320 end"#,
        ),
    );
    let r = ws.run("wrong.lua", &["--tls-ca", "ca.pem"]);
    assert_eq!(r.check("1320"), (1, 0), "{}", r.stderr);
}

#[test]
fn h2c_with_prior_knowledge_when_asked() {
    let srv = start_server_with(Wire::H2c);
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &probe(
            &srv.url("/ok"),
            "",
            r#"["h2c"] = function(r) return r.status == 200 and r.proto == "HTTP/2.0" and r.tls_version == "" end"#,
        ),
    );
    let r = ws.run("t.lua", &["--h2c", "-i", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("h2c"), (5, 0), "{}", r.stderr);
    assert_eq!(srv.count("/ok"), 5);
    assert_eq!(srv.connections(), 1, "one multiplexed connection");
}

#[test]
fn set_up_phases_on_the_first_request_and_zero_on_a_reused_connection() {
    let pki = pki();
    let srv = start_server_with(Wire::Tls(pki.server_h1.clone()));
    let ws = Workspace::new();
    ws.write("ca.pem", &pki.ca_pem);
    ws.write(
        "t.lua",
        &format!(
            r#"
function default()
  local first = http.post("{u}", "x")
  local again = http.post("{u}", "y")
  check(first, {{
    ["first: connect and TLS measured"] = function(r)
      local t = r.timings
      return t.connecting > 0 and t.tls_handshaking > 0 and t.sending > 0 and t.waiting > 0
        and t.looking_up > 0 and t.blocked >= t.looking_up
    end,
    ["duration is sending + waiting + receiving"] = function(r)
      local t = r.timings
      return math.abs(t.duration - (t.sending + t.waiting + t.receiving)) < 1e-6
    end,
  }})
  check(again, {{
    ["reused: no connect, no TLS"] = function(r)
      return r.timings.connecting == 0 and r.timings.tls_handshaking == 0 and r.timings.waiting > 0
    end,
  }})
end
"#,
            u = https_url(&srv, "localhost", "/echo")
        ),
    );
    let r = ws.run("t.lua", &["--tls-ca", "ca.pem", "--connections", "per-vu"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in [
        "first: connect and TLS measured",
        "duration is sending + waiting + receiving",
        "reused: no connect, no TLS",
    ] {
        assert_eq!(r.check(name), (1, 0), "{name}: {}", r.stderr);
    }
    assert_eq!(srv.connections(), 1);
    assert!(r.metric("http_req_tls_handshaking", "max") > 0.0);
    assert_eq!(r.metric("http_req_tls_handshaking", "min"), 0.0);
}

#[test]
fn each_policy_opens_the_connections_it_promises() {
    // 4 VUs x 3 iterations x 2 requests, one worker.
    let script = |url: String| {
        format!(
            "options = {{ scenarios = {{ s = {{ executor = 'per-vu-iterations', vus = 4, iterations = 3 }} }} }}\nfunction default() http.get('{url}') http.get('{url}') sleep(0.02) end\n"
        )
    };
    let cases: [(&[&str], Wire, u64); 5] = [
        (&["--connections", "per-vu"], Wire::Http1, 4),
        (&["--connections", "per-iteration"], Wire::Http1, 12),
        (&["--connections", "per-request"], Wire::Http1, 24),
        (&["--connections", "shared", "--h2c"], Wire::H2c, 1),
        (&["--connections", "per-vu", "--h2c"], Wire::H2c, 4),
    ];
    for (args, wire, expected) in cases {
        let srv = start_server_with(wire);
        let ws = Workspace::new();
        ws.write("t.lua", &script(srv.url("/ok")));
        let mut all = vec!["--workers", "1"];
        all.extend_from_slice(args);
        let r = ws.run("t.lua", &all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(srv.count("/ok"), 24, "{args:?}");
        assert_eq!(srv.connections(), expected, "{args:?}");
    }
    // k6's option names choose the same policies.
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            "options = {{ noVUConnectionReuse = true, vus = 2, iterations = 6 }}\nfunction default() http.get('{u}') http.get('{u}') end\n",
            u = srv.url("/ok")
        ),
    );
    let r = ws.run("t.lua", &["--workers", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(srv.connections(), 6);
}

#[test]
fn discarded_bodies_still_count_their_bytes() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{ discardResponseBodies = true, iterations = 2 }}
function default()
  local r = http.post("{u}", string.rep("z", 5000))
  local kept = http.post("{u}", "abc", {{ responseType = "text" }})
  check(r, {{ ["no body"] = function(r) return r.body == nil and r.status == 200 end }})
  check(kept, {{ ["text when asked"] = function(r) return r.body == "abc" end }})
end
"#,
            u = srv.url("/echo")
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("no body"), (2, 0), "{}", r.stderr);
    assert_eq!(r.check("text when asked"), (2, 0));
    assert!(r.metric("data_received", "count") > 10_000.0);
}

#[test]
fn the_fd_preflight_refuses_a_plan_that_cannot_fit() {
    let ws = Workspace::new();
    ws.write("t.lua", "function default() sleep(1) end\n");
    let engine = env!("CARGO_BIN_EXE_engine");
    let out = std::process::Command::new("sh")
        .current_dir(ws.path())
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {engine} run -q --connections per-vu -u 1000 -d 1s t.lua"
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(104), "{stderr}");
    assert!(
        stderr.contains("--connections per-vu: up to 1000 VUs")
            && stderr.contains("the limit is 256"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn tls_auth_presents_a_client_certificate_to_its_domains() {
    let pki = pki();
    let srv = start_server_with(Wire::Tls(pki.server_mtls.clone()));
    let ws = Workspace::new();
    ws.write("ca.pem", &pki.ca_pem);
    ws.write("client.pem", &pki.client_pem);
    ws.write("client-key.pem", &pki.client_key_pem);
    let url = https_url(&srv, "localhost", "/ok");
    let checks = r#"["200"] = function(r) return r.status == 200 end"#;
    ws.write("anon.lua", &probe(&url, "", checks));
    let r = ws.run("anon.lua", &["--tls-ca", "ca.pem"]);
    assert_eq!(
        r.check("200"),
        (0, 1),
        "without a client certificate: {}",
        r.stderr
    );
    ws.write(
        "mtls.lua",
        &probe(
            &url,
            r#"tlsAuth = { { domains = { "localhost" }, cert = open("client.pem"), key = open("client-key.pem") } }"#,
            checks,
        ),
    );
    let r = ws.run("mtls.lua", &["--tls-ca", "ca.pem"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("200"), (1, 0), "{}", r.stderr);
    assert_eq!(srv.count("/ok"), 1);
}

#[test]
fn bad_tls_and_hosts_options_are_config_errors() {
    let ws = Workspace::new();
    for (opts, msg) in [
        (
            r#"tlsVersion = "tls1.0""#,
            "option tlsVersion.min: \"tls1.0\" is not supported",
        ),
        (
            r#"tlsVersion = { min = "tls1.3", max = "tls1.2" }"#,
            "option tlsVersion: min is above max",
        ),
        (
            r#"tlsAuth = { { domains = { "x" }, cert = "nope", key = "nope" } }"#,
            "option tlsAuth (x): cert: no PEM certificate found",
        ),
        (
            r#"hosts = { ["a.example"] = "not-an-ip" }"#,
            "option hosts: \"a.example\" maps to \"not-an-ip\"",
        ),
    ] {
        ws.write(
            "t.lua",
            &format!("options = {{ {opts} }}\nfunction default() end\n"),
        );
        let r = ws.run("t.lua", &[]);
        assert_eq!(r.code, 104, "{opts}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{opts}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }
    ws.write("ok.lua", "function default() end\n");
    let r = ws.run("ok.lua", &["--tls-ca", "missing.pem"]);
    assert_eq!(r.code, 104);
    assert!(r.stderr.contains("--tls-ca missing.pem"), "{}", r.stderr);
}

/// A bare HTTP/1.1 server that answers each connection's first request with a chunked body
/// and then closes the connection without saying so: every kept-alive connection the client
/// reuses is already dead. Returns its address and the count of accepted connections.
fn start_one_shot_server() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            );
        }
    });
    (addr, accepted)
}

#[test]
fn a_kept_alive_connection_the_server_closed_is_retried_and_chunked_bodies_decode() {
    let (addr, accepted) = start_one_shot_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{ vus = 1, iterations = 12 }}
function default()
  local r = http.get("http://{addr}/")
  check(r, {{ ["whole body"] = function(r) return r.status == 200 and r.body == "hello world" end }})
  if __ITER % 2 == 0 then sleep(0.05) end -- sometimes the close is seen before the reuse
end
"#
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("whole body"), (12, 0), "{}", r.stderr);
    assert_eq!(r.metric("http_reqs", "count"), 12.0);
    assert_eq!(r.metric("http_req_failed", "passes"), 0.0);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 12);
}

/// A bare HTTP/1.1 server that answers each connection's first request and reads its second
/// one whole, then closes without answering: the race where a kept-alive connection is
/// closed by the server after it read a request. Returns its address and how many requests
/// it read in all.
fn start_read_then_close_server() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = read.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut seen: Vec<u8> = Vec::new();
                let mut buf = [0u8; 4096];
                for nth in 0.. {
                    // One request: the head, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while seen.len() < head_end + len {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.drain(..head_end + len);
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if nth > 0 {
                        return; // read, then closed without a word
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
            });
        }
    });
    (addr, read)
}

#[test]
fn a_request_the_server_may_have_read_is_sent_again_only_when_safe_to_repeat() {
    use std::sync::atomic::Ordering::SeqCst;
    let ws = Workspace::new();
    let run = |call: &str| {
        let (addr, read) = start_read_then_close_server();
        ws.write(
            "t.lua",
            &format!(
                r#"
options = {{ vus = 1, iterations = 1 }}
function default()
  local first = {call}
  local second = {call}
  check(first, {{ ["first answered"] = function(r) return r.status == 200 end }})
  check(second, {{ ["second answered"] = function(r) return r.status == 200 end }})
end
"#,
                call = call.replace("ADDR", &addr.to_string())
            ),
        );
        let r = ws.run("t.lua", &["--connections", "per-vu"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        (r, read.load(SeqCst))
    };
    // A POST: the second reached the server, which closed without answering; it is
    // reported failed, not sent twice. Two POSTs counted, two read by the server.
    let (r, read) = run(r#"http.post("http://ADDR/track", "x")"#);
    assert_eq!(read, 2);
    assert_eq!(r.metric("http_reqs", "count"), 2.0);
    assert_eq!(r.check("first answered"), (1, 0));
    assert_eq!(r.check("second answered"), (0, 1), "{}", r.stderr);
    // A GET, and a POST with an idempotency key, are safe to repeat: the second goes again
    // on a new connection and is answered there (the server read three requests, the
    // script made two).
    for call in [
        r#"http.get("http://ADDR/x")"#,
        r#"http.post("http://ADDR/track", "x", { headers = { ["Idempotency-Key"] = "k1" } })"#,
    ] {
        let (r, read) = run(call);
        assert_eq!(read, 3, "{call}");
        assert_eq!(r.metric("http_reqs", "count"), 2.0, "{call}");
        assert_eq!(r.check("second answered"), (1, 0), "{call}: {}", r.stderr);
    }
}
