//! Network options with k6's names: `insecureSkipTLSVerify`, `tlsVersion`, `tlsAuth`,
//! `hosts`, plus the engine's `h2c` (HTTP/2 without TLS, prior knowledge).

use crate::error::{Error, Result};
use crate::http::{ClientCert, TlsOptions};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    pub tls: TlsOptions,
    pub hosts: BTreeMap<String, String>,
    pub h2c: bool,
}

impl NetOptions {
    /// Whether anything differs from a plain default client.
    pub fn is_default(&self) -> bool {
        let t = &self.tls;
        !self.h2c
            && self.hosts.is_empty()
            && !t.insecure_skip_verify
            && t.extra_ca_pem.is_none()
            && t.min_version.is_none()
            && t.max_version.is_none()
            && t.client_certs.is_empty()
    }
}

fn bad(opt: &str, why: impl std::fmt::Display) -> Error {
    Error::config(format!("option {opt}: {why}"))
}

/// Reads the script's network options; `K6_INSECURE_SKIP_TLS_VERIFY` overrides the script.
pub fn from_script(
    obj: &serde_json::Map<String, Value>,
    env: &BTreeMap<String, String>,
) -> Result<NetOptions> {
    let mut out = NetOptions::default();
    out.tls.insecure_skip_verify = match env.get("K6_INSECURE_SKIP_TLS_VERIFY") {
        Some(v) => v == "true" || v == "1",
        None => obj
            .get("insecureSkipTLSVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    out.h2c = obj.get("h2c").and_then(Value::as_bool).unwrap_or(false);
    match obj.get("tlsVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) => {
            out.tls.min_version = Some(v.clone());
            out.tls.max_version = Some(v.clone());
        }
        Some(Value::Object(m)) => {
            let field = |k: &str| -> Result<Option<String>> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(bad(
                        &format!("tlsVersion.{k}"),
                        "expected a string like \"tls1.2\"",
                    )),
                }
            };
            out.tls.min_version = field("min")?;
            out.tls.max_version = field("max")?;
        }
        Some(_) => {
            return Err(bad(
                "tlsVersion",
                "expected \"tls1.2\" or { min = ..., max = ... }",
            ))
        }
    }
    match obj.get("tlsAuth") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("tlsAuth[{}]", i + 1);
                let text = |k: &str| -> Result<String> {
                    item.get(k)
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| {
                            bad(
                                &at,
                                format!("{k} (PEM text, e.g. open(\"cert.pem\")) is required"),
                            )
                        })
                };
                let domains = match item.get("domains") {
                    Some(Value::Array(d)) => d
                        .iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect(),
                    _ => return Err(bad(&at, "domains (a list of host names) is required")),
                };
                out.tls.client_certs.push(ClientCert {
                    domains,
                    cert_pem: text("cert")?,
                    key_pem: text("key")?,
                });
            }
        }
        Some(_) => return Err(bad("tlsAuth", "expected a list of { domains, cert, key }")),
    }
    match obj.get("hosts") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, target) in m {
                let t = target
                    .as_str()
                    .ok_or_else(|| bad("hosts", format!("{name:?}: expected an address string")))?;
                out.hosts.insert(name.clone(), t.to_string());
            }
        }
        Some(_) => {
            return Err(bad(
                "hosts",
                "expected a table of name = \"ip\" or \"ip:port\"",
            ))
        }
    }
    Ok(out)
}
