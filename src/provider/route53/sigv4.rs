//! AWS Signature Version 4 for Route 53 requests, and where the keys come from. Written here
//! (about a hundred lines on `ring`) rather than pulling in the AWS SDK's runtime; it is tested
//! against AWS's published test vectors below.

use std::fmt;
use std::path::PathBuf;

use data_encoding::HEXLOWER;
use ring::{digest, hmac};

/// A secret string (secret key, session token). Shown by neither Debug nor Display.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// AWS credentials and where they were found (for messages; never the secret).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    /// `environment (AWS_ACCESS_KEY_ID)` or `shared credentials file PATH, profile NAME`.
    pub source: String,
}

/// Why no credentials could be loaded.
#[derive(Debug, thiserror::Error)]
#[error("AWS credentials: {0}")]
pub struct CredentialsError(pub String);

impl Credentials {
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        Credentials {
            access_key_id: access_key_id.trim().to_string(),
            secret_access_key: Secret(secret_access_key.trim().to_string()),
            session_token: session_token.map(|t| Secret(t.trim().to_string())),
            source: "given".into(),
        }
    }

    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) at
    /// profile `AWS_PROFILE` (default `default`).
    pub fn from_environment() -> Result<Self, CredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(id) = var("AWS_ACCESS_KEY_ID") {
            let secret = var("AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
                CredentialsError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())
            })?;
            let mut credentials =
                Credentials::new(&id, &secret, var("AWS_SESSION_TOKEN").as_deref());
            credentials.source = "environment (AWS_ACCESS_KEY_ID)".into();
            return Ok(credentials);
        }
        let path = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".aws/credentials")))
            .ok_or_else(|| CredentialsError("AWS_ACCESS_KEY_ID is not set and there is no HOME to find ~/.aws/credentials in".into()))?;
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CredentialsError(format!(
                "AWS_ACCESS_KEY_ID is not set, and the shared credentials file {} cannot be read: {e}",
                path.display()
            ))
        })?;
        let mut credentials = profile_credentials(&text, &profile).map_err(|message| {
            CredentialsError(format!("{} profile `{profile}`: {message}", path.display()))
        })?;
        credentials.source = format!(
            "shared credentials file {}, profile {profile}",
            path.display()
        );
        Ok(credentials)
    }

    /// The secrets, to remove them from anything a server sends back before showing that.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.secret_access_key.0, "<redacted>");
        if let Some(token) = &self.session_token {
            if !token.0.is_empty() {
                text = text.replace(&token.0, "<redacted>");
            }
        }
        text
    }
}

/// The keys of `[profile]` in an INI-style shared credentials file.
fn profile_credentials(text: &str, profile: &str) -> Result<Credentials, String> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            in_profile = line[1..line.len() - 1].trim() == profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_string());
        match key.trim() {
            "aws_access_key_id" => id = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Credentials::new(&id, &secret, token.as_deref())),
        _ => Err("no aws_access_key_id and aws_secret_access_key there".into()),
    }
}

/// What is signed of one request.
pub struct Request<'a> {
    pub method: &'a str,
    /// The Host header's value (`host[:port]`).
    pub host: &'a str,
    /// The path, already URI-encoded.
    pub path: &'a str,
    /// Query parameters, unencoded.
    pub query: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers to add to a request: `X-Amz-Date`, `Authorization`, and
/// `X-Amz-Security-Token` when there is a session token.
pub fn sign(
    credentials: &Credentials,
    request: &Request<'_>,
    unix_seconds: u64,
    region: &str,
    service: &str,
) -> Vec<(&'static str, String)> {
    let amz_date = amz_date(unix_seconds);
    let mut headers = vec![
        ("host", request.host.to_string()),
        ("x-amz-date", amz_date.clone()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token.0.clone()));
    }
    let signed_headers: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let signed_headers = signed_headers.join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        headers
            .iter()
            .map(|(n, v)| format!("{n}:{}\n", v.trim()))
            .collect::<String>(),
        signed_headers,
        sha256_hex(request.body)
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = format!("AWS4{}", credentials.secret_access_key.0).into_bytes();
    for part in [&amz_date[..8], region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = HEXLOWER.encode(&hmac_sha256(&key, to_sign.as_bytes()));
    let mut out = vec![
        ("X-Amz-Date", amz_date),
        (
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        out.push(("X-Amz-Security-Token", token.0.clone()));
    }
    out
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(unix_seconds: u64) -> String {
    crate::clock::rfc3339(unix_seconds).replace(['-', ':'], "")
}

/// Sorted by name then value, each RFC 3986-encoded.
fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    HEXLOWER.encode(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's SigV4 test suite: 2015-08-30T12:36:00Z, us-east-1, service `service`.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite_credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        )
    }

    fn authorization(query: &[(&str, &str)]) -> String {
        let request = Request {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query,
            body: b"",
        };
        let headers = sign(
            &suite_credentials(),
            &request,
            SUITE_TIME,
            "us-east-1",
            "service",
        );
        assert_eq!(headers[0], ("X-Amz-Date", "20150830T123600Z".to_string()));
        headers[1].1.clone()
    }

    #[test]
    fn get_vanilla() {
        assert_eq!(
            authorization(&[]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        assert!(
            authorization(&[("Param2", "value2"), ("Param1", "value1")]).ends_with(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
    }

    #[test]
    fn secrets_never_show_in_debug_and_are_scrubbed() {
        let c = Credentials::new("AKID", "s3cr3t", Some("t0ken"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert_eq!(c.scrub("a s3cr3t b t0ken"), "a <redacted> b <redacted>");
    }

    #[test]
    fn the_shared_file_profile_is_read() {
        let text = "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n\n[ops]\naws_access_key_id=A2\naws_secret_access_key=S2\naws_session_token=T2\n";
        let ops = profile_credentials(text, "ops").unwrap();
        assert_eq!(ops.access_key_id, "A2");
        assert_eq!(ops.scrub("S2 T2"), "<redacted> <redacted>");
        assert!(profile_credentials(text, "none").is_err());
    }
}
