//! TLS client settings (rustls, no system OpenSSL): roots, k6's `insecureSkipTLSVerify`,
//! `tlsVersion`, `tlsAuth` client certificates, a custom CA bundle, and ALPN (h2, http/1.1).
//! Built once per run and shared by every worker (`Arc`).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// What the script and flags ask of TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub insecure_skip_verify: bool,
    /// PEM text of extra CA certificates trusted beside the system roots (`--tls-ca FILE`).
    pub extra_ca_pem: Option<String>,
    /// Lowest and highest protocol version: "tls1.2" or "tls1.3".
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    /// k6's `tlsAuth`: client certificates (PEM text) for the listed domains.
    pub client_certs: Vec<ClientCert>,
}

#[derive(Debug, Clone)]
pub struct ClientCert {
    pub domains: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Ready-made rustls configs: the default one and one per `tlsAuth` entry.
pub struct Tls {
    options: TlsOptions,
    built: OnceLock<Result<Built, String>>,
}

struct Built {
    default: Arc<ClientConfig>,
    by_domain: Vec<(Vec<String>, Arc<ClientConfig>)>,
}

impl Tls {
    /// Checks the options now (so a bad PEM or version is a config error before the run);
    /// the system roots are loaded on the first HTTPS connection.
    pub fn new(options: TlsOptions) -> Result<Arc<Tls>, String> {
        versions(&options)?;
        if let Some(pem) = &options.extra_ca_pem {
            parse_certs(pem, "the CA bundle")?;
        }
        for c in &options.client_certs {
            client_identity(c)?;
        }
        Ok(Arc::new(Tls {
            options,
            built: OnceLock::new(),
        }))
    }

    /// The config for a connection to `host`.
    pub fn config_for(&self, host: &str) -> Result<Arc<ClientConfig>, String> {
        let built = self
            .built
            .get_or_init(|| build(&self.options))
            .as_ref()
            .map_err(Clone::clone)?;
        for (domains, cfg) in &built.by_domain {
            if domains.iter().any(|d| domain_matches(d, host)) {
                return Ok(cfg.clone());
            }
        }
        Ok(built.default.clone())
    }
}

fn domain_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(o: &TlsOptions) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &Option<String>, default: u8, what: &str| -> Result<u8, String> {
        match v.as_deref() {
            None | Some("") => Ok(default),
            Some("tls1.2") => Ok(2),
            Some("tls1.3") => Ok(3),
            Some(old @ ("ssl3.0" | "tls1.0" | "tls1.1")) => Err(format!(
                "option tlsVersion.{what}: {old:?} is not supported (rustls speaks tls1.2 and tls1.3)"
            )),
            Some(other) => Err(format!(
                "option tlsVersion.{what}: unknown version {other:?} (use \"tls1.2\" or \"tls1.3\")"
            )),
        }
    };
    let (min, max) = (
        rank(&o.min_version, 2, "min")?,
        rank(&o.max_version, 3, "max")?,
    );
    if min > max {
        return Err("option tlsVersion: min is above max".into());
    }
    let mut out = Vec::new();
    if min <= 2 {
        out.push(&rustls::version::TLS12);
    }
    if max >= 3 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: not valid PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

fn client_identity(
    c: &ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let what = format!("option tlsAuth ({})", c.domains.join(", "));
    let certs = parse_certs(&c.cert_pem, &format!("{what}: cert"))?;
    let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())
        .map_err(|e| format!("{what}: key: not a valid PEM private key: {e}"))?;
    Ok((certs, key))
}

fn build(o: &TlsOptions) -> Result<Built, String> {
    let mut roots = RootCertStore::empty();
    if !o.insecure_skip_verify {
        // Certificates the system cannot parse are skipped, as browsers do.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = &o.extra_ca_pem {
            for cert in parse_certs(pem, "the CA bundle")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA bundle: unusable certificate: {e}"))?;
            }
        }
    }
    let roots = Arc::new(roots);
    let make = |identity: Option<&ClientCert>| -> Result<Arc<ClientConfig>, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(o)?)
            .map_err(|e| format!("option tlsVersion: {e}"))?;
        let builder = if o.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
        } else {
            builder.with_root_certificates(roots.clone())
        };
        let mut cfg = match identity {
            None => builder.with_no_client_auth(),
            Some(c) => {
                let (certs, key) = client_identity(c)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("option tlsAuth: {e}"))?
            }
        };
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    };
    Ok(Built {
        default: make(None)?,
        by_domain: o
            .client_certs
            .iter()
            .map(|c| Ok((c.domains.clone(), make(Some(c))?)))
            .collect::<Result<_, String>>()?,
    })
}

/// `insecureSkipTLSVerify`: any certificate chain and name, but handshake signatures are
/// still checked (a broken handshake is still an error).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// k6's name for a negotiated version ("tls1.3").
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "tls1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "tls1.2",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_domains() {
        let o = |min: &str, max: &str| TlsOptions {
            min_version: Some(min.into()),
            max_version: Some(max.into()),
            ..Default::default()
        };
        assert_eq!(versions(&o("tls1.3", "tls1.3")).unwrap().len(), 1);
        assert_eq!(versions(&o("tls1.2", "tls1.3")).unwrap().len(), 2);
        assert!(versions(&o("tls1.3", "tls1.2")).is_err());
        assert!(versions(&o("tls1.0", ""))
            .unwrap_err()
            .contains("not supported"));
        assert!(domain_matches("*.example.com", "a.example.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(domain_matches("Example.com", "example.com"));
    }
}
