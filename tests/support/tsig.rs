//! TSIG keys made with `tsig-keygen`, and their forms for BIND, Knot, dig and nsupdate.

use std::ffi::OsString;
use std::time::Duration;

use super::tools::run_ok;

/// The TSIG algorithms the tests use (all supported by BIND 9.18, Knot 3.2 and PowerDNS 4.7).
pub const TSIG_ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// A TSIG key: `name` (a domain name), `algorithm` ("hmac-sha256", ...), base64 secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    pub secret_base64: String,
}

impl TsigKey {
    /// A fresh random key from `tsig-keygen -a ALGORITHM NAME` (package bind9).
    pub fn generate(name: &str, algorithm: &str) -> TsigKey {
        let args = [OsString::from("-a"), algorithm.into(), name.into()];
        let ran = run_ok("tsig-keygen", &args, None, Duration::from_secs(10));
        let key = TsigKey::parse_bind_conf(&ran.stdout)
            .unwrap_or_else(|| panic!("cannot parse tsig-keygen output:\n{}", ran.stdout));
        assert_eq!(
            (key.name.as_str(), key.algorithm.as_str()),
            (name, algorithm),
            "tsig-keygen made another key than asked"
        );
        key
    }

    /// An hmac-sha256 key named `test-key`.
    pub fn test_key() -> TsigKey {
        TsigKey::generate("test-key", "hmac-sha256")
    }

    /// Parses a BIND `key "NAME" { algorithm ALG; secret "BASE64"; };` clause.
    pub fn parse_bind_conf(text: &str) -> Option<TsigKey> {
        let mut name = None;
        let mut algorithm = None;
        let mut secret = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("key ") {
                name = Some(
                    rest.trim_end_matches('{')
                        .trim()
                        .trim_matches('"')
                        .to_owned(),
                );
            } else if let Some(rest) = line.strip_prefix("algorithm ") {
                algorithm = Some(rest.trim_end_matches(';').trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("secret ") {
                secret = Some(
                    rest.trim_end_matches(';')
                        .trim()
                        .trim_matches('"')
                        .to_owned(),
                );
            }
        }
        Some(TsigKey {
            name: name.filter(|n| !n.is_empty())?,
            algorithm: algorithm.filter(|a| !a.is_empty())?,
            secret_base64: secret.filter(|s| !s.is_empty())?,
        })
    }

    /// The BIND `key` clause (named.conf, `nsupdate -k` key files).
    pub fn bind_conf(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret_base64
        )
    }

    /// `ALGORITHM:NAME:SECRET`, the `-y` argument of dig and nsupdate.
    pub fn dig_arg(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret_base64)
    }

    /// The decoded secret length in bytes (the HMAC output size for tsig-keygen keys).
    pub fn secret_len(&self) -> usize {
        let s = self.secret_base64.trim_end_matches('=');
        s.len() * 3 / 4
    }
}
