//! TLS on the probe: STARTTLS after the stream features (RFC 6120 §5), or a direct TLS
//! handshake (XEP-0368 `_xmpps-server`, or the Edge's SIP TLS port), with rustls, and what the
//! peer's certificate says: protocol, cipher, the chain against the system's roots (or a
//! private CA), the DNS-IDs it names (RFC 6125 matching, for each SIP domain), its validity
//! window, its EKUs and SHA-256 fingerprints.
//!
//! The handshake itself accepts any certificate: the point is to see and judge it, not to
//! trust it. The chain is judged afterwards with webpki, at a time inside the certificate's own
//! validity window, so an expired certificate is reported as expired (rule 19) and not also as
//! an untrusted chain (rule 20).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

use super::{escape_attribute, STREAMS_NS, TLS_NS};

/// Why the trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the CA file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {} holds no usable certificate ({reason})", path.display())]
    NoAnchor { path: PathBuf, reason: String },
}

/// The trust anchors a chain is judged against: the Mozilla roots (webpki-roots) by default,
/// or the certificates of a private CA file.
#[derive(Debug, Clone)]
pub struct Anchors {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    /// Where they came from, for messages ("public roots" or the file).
    pub source: String,
}

impl Anchors {
    /// The public roots (the Mozilla set, as webpki-roots ships it).
    pub fn public() -> Anchors {
        Anchors {
            anchors: Arc::new(webpki_roots::TLS_SERVER_ROOTS.to_vec()),
            source: "the public roots".to_string(),
        }
    }

    /// The certificates of a PEM file (a private CA), instead of the public roots.
    pub fn from_file(path: &Path) -> Result<Anchors, TlsSetupError> {
        let bytes = std::fs::read(path).map_err(|source| TlsSetupError::CaFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut anchors = Vec::new();
        for der in CertificateDer::pem_slice_iter(&bytes) {
            let der = der.map_err(|e| TlsSetupError::NoAnchor {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let anchor =
                webpki::anchor_from_trusted_cert(&der).map_err(|e| TlsSetupError::NoAnchor {
                    path: path.to_path_buf(),
                    reason: format!("{e:?}"),
                })?;
            anchors.push(anchor.to_owned());
        }
        if anchors.is_empty() {
            return Err(TlsSetupError::NoAnchor {
                path: path.to_path_buf(),
                reason: "no PEM CERTIFICATE block".to_string(),
            });
        }
        Ok(Anchors {
            anchors: Arc::new(anchors),
            source: path.display().to_string(),
        })
    }

    /// `from_file` when a file is given, else the public roots.
    pub fn load(ca_file: Option<&Path>) -> Result<Anchors, TlsSetupError> {
        ca_file.map_or_else(|| Ok(Anchors::public()), Anchors::from_file)
    }
}

/// How the TLS session is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// XMPP stream, features, `<starttls/>`, `<proceed/>`, then TLS (port 5269).
    Starttls,
    /// TLS at once (XEP-0368 with ALPN `xmpp-server`, or the SIP TLS port without ALPN).
    Direct,
}

/// How far a TLS check got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsStatus {
    /// The handshake completed; `certificate` says what was presented.
    Handshake,
    /// The peer answered as XMPP but offered no STARTTLS (rule 21).
    NoStarttls,
    /// The peer refused `<starttls/>` or ended the stream (e.g. `host-unknown`).
    Refused,
    /// The handshake failed with a protocol-version alert: the peer speaks only TLS 1.0/1.1
    /// (rustls offers 1.2 and 1.3) (rule 21).
    OldProtocol,
    /// The handshake failed otherwise.
    Failed,
    /// No TCP connection, or no XMPP answer.
    Unreachable,
}

/// What the end-entity certificate says, plus the verdict on its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    /// The DNS-IDs (subjectAltName dNSName entries), as written.
    pub dns_names: Vec<String>,
    /// The subject's CN, used for matching only when there is no DNS-ID (RFC 6125 §6.4.4).
    pub common_name: Option<String>,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The EKU extension lists serverAuth (or has no EKU extension at all, which allows any).
    pub server_auth: bool,
    /// The EKU extension lists clientAuth (Lync uses the same certificate for MTLS).
    pub client_auth: bool,
    pub self_signed: bool,
    /// SHA-256 of the end-entity certificate, then of each further certificate sent.
    pub sha256: Vec<String>,
    /// The chain validates against the anchors (judged inside the validity window).
    pub chain_valid: bool,
    /// Why it does not.
    pub chain_error: Option<String>,
}

impl CertificateFacts {
    /// Whole days from `now` (Unix seconds) to notAfter; negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// RFC 6125 / RFC 7590 DNS-ID matching of a SIP domain against this certificate.
    pub fn covers(&self, domain: &str) -> bool {
        if self.dns_names.is_empty() {
            return self
                .common_name
                .as_deref()
                .is_some_and(|cn| dns_id_matches(cn, domain));
        }
        self.dns_names.iter().any(|id| dns_id_matches(id, domain))
    }
}

/// One TLS check of one address, for one domain (stream `to` and SNI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsCheck {
    pub address: SocketAddr,
    pub domain: String,
    pub mode: TlsMode,
    pub status: TlsStatus,
    /// "TLSv1.3", "TLSv1.2".
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    pub certificate: Option<CertificateFacts>,
    /// The certificate covers `domain` (RFC 6125 DNS-ID).
    pub covers_domain: bool,
    /// When the check ran, Unix seconds (days to expiry are counted from it).
    pub checked_at: i64,
    /// Time of the TLS part alone (STARTTLS exchange and handshake), when it ran.
    pub tls_ms: Option<u64>,
    /// The whole check, connection included.
    pub total_ms: u64,
    pub detail: String,
}

impl TlsCheck {
    fn new(address: SocketAddr, domain: &str, mode: TlsMode) -> TlsCheck {
        TlsCheck {
            address,
            domain: domain.to_string(),
            mode,
            status: TlsStatus::Unreachable,
            protocol: None,
            cipher: None,
            certificate: None,
            covers_domain: false,
            checked_at: unix_now(),
            tls_ms: None,
            total_ms: 0,
            detail: String::new(),
        }
    }
}

/// What to connect to and how.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    pub address: SocketAddr,
    /// The SIP domain: stream `to` and SNI.
    pub domain: String,
    pub mode: TlsMode,
    /// ALPN for direct TLS (`xmpp-server` for XEP-0368).
    pub alpn: Option<&'static str>,
}

/// Checks one target; never fails, the result says what happened.
pub fn check(target: &TlsTarget, anchors: &Anchors, timeout: Duration) -> TlsCheck {
    let start = Instant::now();
    let mut result = TlsCheck::new(target.address, &target.domain, target.mode);
    match TcpStream::connect_timeout(&target.address, timeout) {
        Err(e) => result.detail = format!("cannot connect: {e}"),
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(timeout));
            let _ = stream.set_write_timeout(Some(timeout));
            let tls_start = Instant::now();
            let ready = match target.mode {
                TlsMode::Starttls => negotiate_starttls(&mut stream, &target.domain, &mut result),
                TlsMode::Direct => true,
            };
            if ready {
                handshake(&mut stream, target, anchors, &mut result);
                result.tls_ms = Some(super::millis(tls_start.elapsed()));
            }
        }
    }
    result.total_ms = super::millis(start.elapsed());
    result
}

/// Checks every target, a bounded number at a time; results in input order.
pub fn check_all(targets: &[TlsTarget], anchors: &Anchors, timeout: Duration) -> Vec<TlsCheck> {
    let mut results = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(super::PARALLEL) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|t| scope.spawn(move || check(t, anchors, timeout)))
                .collect();
            for handle in handles {
                results.push(handle.join().expect("a TLS check thread panicked"));
            }
        });
    }
    results
}

/// Stream header, features, `<starttls/>`, `<proceed/>`; true when TLS may start.
fn negotiate_starttls(stream: &mut TcpStream, domain: &str, result: &mut TlsCheck) -> bool {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='{STREAMS_NS}' to='{}' version='1.0'>",
        escape_attribute(domain)
    );
    if let Err(e) = stream.write_all(header.as_bytes()) {
        result.detail = format!("sending the stream header failed: {e}");
        return false;
    }
    let features = read_until(stream, |t| {
        t.contains("</stream:features>")
            || t.contains("<stream:features/>")
            || t.contains("</stream:stream>")
            || t.contains(":error>")
    });
    let text = match features {
        Ok(text) => text,
        Err(why) => {
            result.detail = format!("no XMPP stream features: {why}");
            return false;
        }
    };
    if let Some(condition) = super::stream_error_condition(&text) {
        result.status = TlsStatus::Refused;
        let condition = peer_text(&condition);
        result.detail = format!("the stream to {domain} ended with <{condition}/>");
        return false;
    }
    if !text.contains(TLS_NS) {
        result.status = TlsStatus::NoStarttls;
        result.detail = "the stream features offer no STARTTLS".to_string();
        return false;
    }
    let asked = stream.write_all(format!("<starttls xmlns='{TLS_NS}'/>").as_bytes());
    match asked
        .map_err(|e| e.to_string())
        .and_then(|()| read_until(stream, |t| t.contains("<proceed") || t.contains("<failure")))
    {
        Ok(reply) if reply.contains("<proceed") => true,
        Ok(_) => {
            result.status = TlsStatus::Refused;
            result.detail = "the peer answered <starttls/> with <failure/>".to_string();
            false
        }
        Err(why) => {
            result.status = TlsStatus::Refused;
            result.detail = format!("no <proceed/> after <starttls/>: {why}");
            false
        }
    }
}

/// Reads until `done(text so far)` or 16 KiB, EOF, or the socket's read timeout.
fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> Result<String, String> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received);
        if done(&text) {
            return Ok(text.into_owned());
        }
        if received.len() > super::MAX_READ {
            return Err("more than 16 KiB without it".to_string());
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("the peer closed the connection".to_string()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("no answer in time".to_string())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading failed: {e}")),
        }
    }
}

/// The TLS handshake on an open connection, and what it showed.
fn handshake(stream: &mut TcpStream, target: &TlsTarget, anchors: &Anchors, out: &mut TlsCheck) {
    let name = match ServerName::try_from(target.domain.clone()) {
        Ok(name) => name,
        Err(e) => {
            out.status = TlsStatus::Failed;
            out.detail = format!("`{}` cannot be sent as SNI: {e}", target.domain);
            return;
        }
    };
    let config = client_config(target.alpn);
    let mut conn = match ClientConnection::new(config, name) {
        Ok(conn) => conn,
        Err(e) => {
            out.status = TlsStatus::Failed;
            out.detail = format!("TLS setup failed: {e}");
            return;
        }
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(stream) {
            let text = e.to_string();
            out.status = if text.contains("ProtocolVersion") {
                TlsStatus::OldProtocol
            } else {
                TlsStatus::Failed
            };
            out.detail = format!("TLS handshake failed: {text}");
            return;
        }
    }
    out.status = TlsStatus::Handshake;
    out.protocol = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .map(|v| v.replace('_', "v").replace("TLSv1v", "TLSv1."));
    out.cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map(str::to_string);
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_default();
    conn.send_close_notify();
    let _ = conn.complete_io(stream);
    match chain.split_first() {
        None => out.detail = "the peer sent no certificate".to_string(),
        Some((leaf, rest)) => match describe(leaf, rest, anchors) {
            Ok(facts) => {
                out.covers_domain = facts.covers(&target.domain);
                out.detail = summary(out, &facts);
                out.certificate = Some(facts);
            }
            Err(why) => out.detail = format!("the certificate cannot be read: {why}"),
        },
    }
}

fn summary(check: &TlsCheck, facts: &CertificateFacts) -> String {
    format!(
        "{} {}, certificate for {} from {}, {} {}",
        check.protocol.as_deref().unwrap_or("TLS"),
        check.cipher.as_deref().unwrap_or(""),
        if facts.dns_names.is_empty() {
            facts.common_name.clone().unwrap_or_default()
        } else {
            facts.dns_names.join(", ")
        },
        facts.issuer,
        if check.covers_domain {
            "covers"
        } else {
            "does not cover"
        },
        check.domain
    )
}

/// A client configuration that accepts any certificate (judged later) with this ALPN.
fn client_config(alpn: Option<&str>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(SeeEverything(provider.clone()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    if let Some(alpn) = alpn {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Arc::new(config)
}

/// Accepts every certificate so that it can be inspected; the handshake signatures are still
/// checked (a peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct SeeEverything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SeeEverything {
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
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads the end-entity certificate and judges its chain.
pub fn describe(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &Anchors,
) -> Result<CertificateFacts, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(peer_text(d)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(peer_text);
    let (server_auth, client_auth) = match cert.extended_key_usage().ok().flatten() {
        None => (true, false),
        Some(eku) => (
            eku.value.server_auth || eku.value.any,
            eku.value.client_auth,
        ),
    };
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let mut sha256 = vec![fingerprint(leaf)];
    sha256.extend(intermediates.iter().map(|c| fingerprint(c)));
    let chain_error = chain_error(leaf, intermediates, anchors, not_before, not_after);
    Ok(CertificateFacts {
        subject: peer_text(&cert.subject().to_string()),
        issuer: peer_text(&cert.issuer().to_string()),
        dns_names,
        common_name,
        not_before,
        not_after,
        server_auth,
        client_auth,
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        sha256,
        chain_valid: chain_error.is_none(),
        chain_error,
    })
}

/// Why the chain does not validate against the anchors, judged at the middle of the
/// certificate's validity window (expiry is rule 19's business, not the chain's).
fn chain_error(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &Anchors,
    not_before: i64,
    not_after: i64,
) -> Option<String> {
    let cert = match webpki::EndEntityCert::try_from(leaf) {
        Ok(cert) => cert,
        Err(e) => return Some(format!("unreadable certificate ({e:?})")),
    };
    let middle = not_before + (not_after - not_before) / 2;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(middle).unwrap_or(0)));
    let verified = cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors.anchors,
        intermediates,
        at,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    match verified {
        Ok(_) => None,
        Err(webpki::Error::UnknownIssuer) => Some(format!(
            "issued by an unknown CA (not in {}), or an intermediate certificate is missing",
            anchors.source
        )),
        Err(e) => Some(format!("{e:?}")),
    }
}

/// Text from the peer (certificate names, a stream error), control characters shown as `.`,
/// so that it cannot drive the terminal it is printed on; at most 256 characters.
fn peer_text(text: &str) -> String {
    super::printable_prefix(text.as_bytes(), 256)
}

/// `AB:CD:...` SHA-256 of a DER certificate.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 6125 §6.4: a DNS-ID matches a reference identifier case-insensitively, label for
/// label; a `*` is allowed only as the whole left-most label, stands for exactly one label,
/// and never for the bare parent (`*.contoso.com` does not match `contoso.com`). A wildcard
/// directly under a top-level domain (`*.com`) matches nothing. Partial-label wildcards
/// (`f*.contoso.com`), which RFC 6125 lets a client refuse, are refused.
pub fn dns_id_matches(dns_id: &str, domain: &str) -> bool {
    let id = dns_id.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if id.is_empty() || domain.is_empty() {
        return false;
    }
    match id.strip_prefix("*.") {
        None => !id.contains('*') && id == domain,
        Some(parent) => {
            if parent.contains('*') || !parent.contains('.') {
                return false;
            }
            match domain.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest == parent,
                None => false,
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_match_without_regard_to_case_or_the_root_dot() {
        assert!(dns_id_matches("Contoso.COM", "contoso.com."));
        assert!(!dns_id_matches("contoso.com", "fabrikam.com"));
        assert!(!dns_id_matches("sip.contoso.com", "contoso.com"));
    }

    #[test]
    fn a_wildcard_stands_for_one_left_most_label_never_the_bare_domain() {
        assert!(dns_id_matches("*.contoso.com", "sip.contoso.com"));
        assert!(!dns_id_matches("*.contoso.com", "contoso.com"));
        assert!(!dns_id_matches("*.contoso.com", "a.b.contoso.com"));
        assert!(!dns_id_matches("sip.*.com", "sip.contoso.com"));
        assert!(!dns_id_matches("s*.contoso.com", "sip.contoso.com"));
        assert!(!dns_id_matches("*.com", "contoso.com"));
        assert!(!dns_id_matches("*", "contoso"));
    }

    #[test]
    fn peer_text_cannot_drive_a_terminal() {
        assert_eq!(peer_text("CN=a\x1b[31mb\n"), "CN=a.[31mb.");
    }

    #[test]
    fn the_common_name_counts_only_without_dns_ids() {
        let mut facts = CertificateFacts {
            subject: "CN=contoso.com".into(),
            issuer: "CN=contoso.com".into(),
            dns_names: vec![],
            common_name: Some("contoso.com".into()),
            not_before: 0,
            not_after: 86_400 * 10,
            server_auth: true,
            client_auth: false,
            self_signed: true,
            sha256: vec![],
            chain_valid: false,
            chain_error: None,
        };
        assert!(facts.covers("contoso.com"));
        facts.dns_names = vec!["fabrikam.com".into()];
        assert!(!facts.covers("contoso.com"));
        assert_eq!(facts.days_left(86_400 * 3 + 5), 6);
        assert_eq!(facts.days_left(86_400 * 11), -1);
    }
}
