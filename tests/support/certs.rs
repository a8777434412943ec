//! Certificates for the TLS tests, made with rcgen: a test CA, leaf certificates it signs
//! (current, expired, about to expire, missing a name, wildcard), and self-signed ones.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    /// The leaf certificate (the chain sent by the server: the leaf alone, the CA being the
    /// trust anchor).
    pub cert_pem: String,
    pub key_pem: String,
}

/// When a leaf is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From yesterday for a year.
    Current,
    /// Ended ten days ago.
    Expired,
    /// Ends in this many days.
    EndsInDays(i64),
}

/// A test certificate authority (ECDSA P-256).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(30);
        params.not_after = now + Duration::days(3650);
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        TestCa { issuer }
    }

    /// The CA certificate, PEM (what `--ca` / `tls.ca_file` is given).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.pem()).expect("write the CA file");
    }

    /// A server certificate for `names` (subjectAltName dNSName entries) signed by this CA.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Leaf {
        let (params, key) = leaf_params(names, validity);
        let cert = params.signed_by(&key, &self.issuer).expect("a signed leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed server certificate for `names`, valid now.
pub fn self_signed(names: &[&str]) -> Leaf {
    let (params, key) = leaf_params(names, Validity::Current);
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn leaf_params(names: &[&str], validity: Validity) -> (CertificateParams, KeyPair) {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = OffsetDateTime::now_utc();
    let (from, to) = match validity {
        Validity::Current => (now - Duration::days(1), now + Duration::days(365)),
        Validity::Expired => (now - Duration::days(100), now - Duration::days(10)),
        Validity::EndsInDays(days) => (now - Duration::days(30), now + Duration::days(days)),
    };
    params.not_before = from;
    params.not_after = to;
    (params, KeyPair::generate().expect("a leaf key"))
}
