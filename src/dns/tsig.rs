//! TSIG (RFC 8945) on `ring::hmac`: keys, request signing, and verification of single and
//! multi-message replies.
//!
//! Written here rather than taken from hickory: hickory 0.25's `TSigner` supports only
//! hmac-sha256/384/512, and when a server answers BADSIG or BADKEY (an unsigned error reply)
//! it reports an internal "truncated HMAC" error instead of the server's answer. Our users must
//! see NOTAUTH + BADSIG / BADKEY / BADTIME by name.

use std::fmt;
use std::sync::Arc;

use ring::hmac;

use crate::dns::gss::SecurityContext;
use crate::dns::wire::{self, Reader, WireError};

/// RR type and class numbers used by TSIG.
pub const TSIG_TYPE: u16 = 250;
const CLASS_ANY: u16 = 255;
/// RFC 8945 §10 recommends 300 seconds.
pub const DEFAULT_FUDGE: u16 = 300;
/// RFC 8945 §5.3.1: a signed message at least every 100 envelopes.
const MAX_UNSIGNED_RUN: usize = 99;

/// TSIG error codes (RFC 8945 §3, §5.2).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;

/// The name of a TSIG error code.
pub fn error_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        BADSIG => "BADSIG".into(),
        BADKEY => "BADKEY".into(),
        BADTIME => "BADTIME".into(),
        19 => "BADMODE".into(),
        20 => "BADNAME".into(),
        21 => "BADALG".into(),
        BADTRUNC => "BADTRUNC".into(),
        other => format!("TSIG error {other}"),
    }
}

/// The algorithms we sign with: HMACs with a shared secret, and GSS-TSIG (RFC 3645), whose
/// MAC is a GSS-API MIC made with a context negotiated by TKEY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
    /// `gss-tsig`.
    GssTsig,
    /// `gss.microsoft.com`: the name Windows 2000 used; later Windows accepts both.
    GssMicrosoft,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::HmacSha1,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    /// Parses a name as BIND and RFC 8945 write it (`hmac-sha256`, with or without the dot).
    pub fn from_name(name: &str) -> Result<Self, TsigError> {
        let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
        match lower.as_str() {
            "hmac-sha1" => Ok(Algorithm::HmacSha1),
            "hmac-sha256" => Ok(Algorithm::HmacSha256),
            "hmac-sha384" => Ok(Algorithm::HmacSha384),
            "hmac-sha512" => Ok(Algorithm::HmacSha512),
            _ => Err(TsigError::UnsupportedAlgorithm { name: lower }),
        }
    }

    /// The name without the trailing dot.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
            Algorithm::GssTsig => "gss-tsig",
            Algorithm::GssMicrosoft => "gss.microsoft.com",
        }
    }

    /// True for the GSS-API algorithms (no shared secret; MICs of varying length).
    pub fn is_gss(self) -> bool {
        matches!(self, Algorithm::GssTsig | Algorithm::GssMicrosoft)
    }

    fn ring(self) -> Option<hmac::Algorithm> {
        match self {
            // SHA-1 HMAC is still what older appliances offer; RFC 8945 keeps it as optional.
            Algorithm::HmacSha1 => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Algorithm::HmacSha256 => Some(hmac::HMAC_SHA256),
            Algorithm::HmacSha384 => Some(hmac::HMAC_SHA384),
            Algorithm::HmacSha512 => Some(hmac::HMAC_SHA512),
            Algorithm::GssTsig | Algorithm::GssMicrosoft => None,
        }
    }

    /// Length of a full MAC (and of a generated key); 0 for GSS-TSIG, whose MICs vary.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
            Algorithm::GssTsig | Algorithm::GssMicrosoft => 0,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Key material that never shows itself in Debug or Display.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The base64 form, for writing key files only.
    pub fn expose_base64(&self) -> String {
        data_encoding::BASE64.encode(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A TSIG key: name, algorithm and secret; or, for GSS-TSIG, the name TKEY gave a
/// negotiated security context (RFC 3645 calls that context the key).
#[derive(Clone)]
pub struct TsigKey {
    /// Lower-case, absolute (`xmppdns-key.`).
    name: String,
    algorithm: Algorithm,
    secret: Secret,
    mac: KeyMac,
}

/// What computes the MACs.
#[derive(Clone)]
enum KeyMac {
    Hmac(hmac::Key),
    Context(Arc<SecurityContext>),
}

impl PartialEq for TsigKey {
    fn eq(&self, other: &Self) -> bool {
        let same_context = match (&self.mac, &other.mac) {
            (KeyMac::Context(a), KeyMac::Context(b)) => Arc::ptr_eq(a, b),
            (KeyMac::Hmac(_), KeyMac::Hmac(_)) => true,
            _ => false,
        };
        (&self.name, self.algorithm, &self.secret) == (&other.name, other.algorithm, &other.secret)
            && same_context
    }
}

impl Eq for TsigKey {}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

impl TsigKey {
    pub fn new(name: &str, algorithm: Algorithm, secret: Secret) -> Result<Self, TsigError> {
        let mut name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name == "." {
            return Err(TsigError::BadKey("the key name is empty".into()));
        }
        if !name.ends_with('.') {
            name.push('.');
        }
        wire::name_to_wire(&name)
            .map_err(|e| TsigError::BadKey(format!("key name {name}: {e}")))?;
        if secret.0.is_empty() {
            return Err(TsigError::BadKey(format!("key {name} has an empty secret")));
        }
        let Some(ring) = algorithm.ring() else {
            return Err(TsigError::BadKey(format!(
                "{algorithm} keys come from TKEY negotiation, not from a secret"
            )));
        };
        let mac = KeyMac::Hmac(hmac::Key::new(ring, &secret.0));
        Ok(TsigKey {
            name,
            algorithm,
            secret,
            mac,
        })
    }

    /// The key of an established GSS-API context, named as TKEY negotiated it.
    pub fn from_context(
        name: &str,
        algorithm: Algorithm,
        context: Arc<SecurityContext>,
    ) -> Result<Self, TsigError> {
        let mut name = name.trim().to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        wire::name_to_wire(&name)
            .map_err(|e| TsigError::BadKey(format!("key name {name}: {e}")))?;
        if !algorithm.is_gss() {
            return Err(TsigError::BadKey(format!(
                "{algorithm} needs a secret, not a GSS-API context"
            )));
        }
        Ok(TsigKey {
            name,
            algorithm,
            secret: Secret::new(Vec::new()),
            mac: KeyMac::Context(context),
        })
    }

    /// True when the MACs are GSS-API MICs (the key is a negotiated context).
    pub fn is_context(&self) -> bool {
        matches!(self.mac, KeyMac::Context(_))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A new random key (`xmppdns keygen`), as long as the hash output (RFC 8945 §6).
    pub fn generate(name: &str, algorithm: Algorithm) -> Result<Self, TsigError> {
        let mut bytes = vec![0u8; algorithm.output_len()];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| TsigError::BadKey("the system random source failed".into()))?;
        TsigKey::new(name, algorithm, Secret::new(bytes))
    }

    /// The key in the format `tsig-keygen` writes and `named.conf` includes.
    pub fn to_bind_file(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name.trim_end_matches('.'),
            self.algorithm.name(),
            self.secret.expose_base64()
        )
    }

    /// Parses `alg:name:base64secret` (the form used in environment variables, as nsupdate -y).
    ///
    /// No error names what a field holds: with the fields in the wrong order the secret sits
    /// where the algorithm or the name should be, and would be printed.
    pub fn from_spec(spec: &str) -> Result<Self, TsigError> {
        const FORM: &str = "expected ALGORITHM:NAME:BASE64SECRET, as for nsupdate -y";
        let mut parts = spec.trim().splitn(3, ':');
        let (Some(alg), Some(name), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TsigError::BadKey(FORM.into()));
        };
        let algorithm = Algorithm::from_name(alg).map_err(|_| {
            TsigError::BadKey(format!(
                "the algorithm (first field) is not supported; use hmac-sha256 (default), hmac-sha384, hmac-sha512, or hmac-sha1 for older servers; {FORM}"
            ))
        })?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(TsigError::BadKey(format!(
                "the second field is not a key name (letters, digits, `-`, `_` and `.` only); {FORM}"
            )));
        }
        let secret = decode_secret(secret).map_err(|_| {
            TsigError::BadKey(format!("the third field is not a base64 secret; {FORM}"))
        })?;
        TsigKey::new(name, algorithm, secret).map_err(|_| {
            TsigError::BadKey(format!(
                "the key name (second field) is not a domain name or the secret is empty; {FORM}"
            ))
        })
    }

    /// Parses a BIND key file (`key "name" { algorithm hmac-sha256; secret "..."; };`).
    /// Only the first key is used.
    pub fn from_bind_file(text: &str) -> Result<Self, TsigError> {
        // Strip comments (#, //, /* */ are all allowed in named.conf), but not inside quoted
        // strings: base64 secrets often contain `//`.
        let mut clean = String::with_capacity(text.len());
        let mut rest = text;
        let mut in_quote = false;
        while let Some(c) = rest.chars().next() {
            if !in_quote {
                if let Some(after) = rest.strip_prefix("/*") {
                    rest = after.split_once("*/").map(|(_, r)| r).unwrap_or("");
                    continue;
                }
                if rest.starts_with('#') || rest.starts_with("//") {
                    rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
                    continue;
                }
            }
            if c == '"' {
                in_quote = !in_quote;
            }
            clean.push(c);
            rest = &rest[c.len_utf8()..];
        }
        let bad = |m: &str| TsigError::BadKey(format!("not a BIND key file: {m}"));
        let after_key = clean
            .split_once("key")
            .map(|(_, r)| r)
            .ok_or_else(|| bad("no `key` statement"))?;
        let (name_part, body) = after_key
            .split_once('{')
            .ok_or_else(|| bad("no `{` after the key name"))?;
        let name = name_part.trim().trim_matches('"');
        let body = body
            .split_once('}')
            .map(|(b, _)| b)
            .ok_or_else(|| bad("no closing `}`"))?;
        let mut algorithm = None;
        let mut secret = None;
        for statement in body.split(';') {
            let statement = statement.trim();
            if let Some(value) = statement.strip_prefix("algorithm") {
                algorithm = Some(Algorithm::from_name(value.trim().trim_matches('"'))?);
            } else if let Some(value) = statement.strip_prefix("secret") {
                secret = Some(decode_secret(value.trim().trim_matches('"'))?);
            }
        }
        TsigKey::new(
            name,
            algorithm.ok_or_else(|| bad("no `algorithm`"))?,
            secret.ok_or_else(|| bad("no `secret`"))?,
        )
    }

    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, TsigError> {
        match &self.mac {
            KeyMac::Hmac(key) => Ok(hmac::sign(key, data).as_ref().to_vec()),
            KeyMac::Context(context) => context
                .get_mic(data)
                .map_err(|e| TsigError::Context(e.to_string())),
        }
    }

    fn verify_mac(&self, data: &[u8], mac: &[u8]) -> Result<(), TsigError> {
        let bad = || TsigError::BadMac {
            key: self.name.clone(),
        };
        match &self.mac {
            KeyMac::Hmac(key) => hmac::verify(key, data, mac).map_err(|_| bad()),
            KeyMac::Context(context) => context.verify_mic(data, mac).map_err(|_| bad()),
        }
    }
}

fn decode_secret(text: &str) -> Result<Secret, TsigError> {
    data_encoding::BASE64
        .decode(text.trim().as_bytes())
        .map(Secret::new)
        // The secret itself is never echoed, even when malformed.
        .map_err(|_| TsigError::BadKey("the secret is not valid base64".into()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsigError {
    #[error("TSIG algorithm `{name}` is not supported; use hmac-sha256 (default), hmac-sha384, hmac-sha512, or hmac-sha1 for older servers")]
    UnsupportedAlgorithm { name: String },
    #[error("TSIG key: {0}")]
    BadKey(String),
    #[error("the reply is not signed although the request was: it cannot be trusted")]
    Unsigned,
    #[error("the reply's TSIG MAC does not verify (key {key}): it cannot be trusted")]
    BadMac { key: String },
    #[error("the reply's TSIG is from key {found}, not {expected}")]
    WrongKey { expected: String, found: String },
    #[error(
        "the reply's TSIG uses algorithm {found}, not the key's {expected}: it cannot be trusted"
    )]
    WrongAlgorithm { expected: Algorithm, found: String },
    #[error("the reply's MAC is truncated to {len} bytes; only full MACs are accepted")]
    Truncated { len: usize },
    #[error("the reply was signed at {signed} but our clock says {now} (fudge {fudge} s): check the clocks")]
    TimeSkew { signed: u64, now: u64, fudge: u16 },
    #[error("more than {MAX_UNSIGNED_RUN} unsigned messages in a row in a signed transfer (RFC 8945 §5.3.1)")]
    TooManyUnsigned,
    #[error("a message inside the transfer carries TSIG error {} ({}): the transfer cannot be trusted", error_name(*code), if *signed { "signed" } else { "without a MAC" })]
    ErrorInStream { code: u16, signed: bool },
    #[error("malformed TSIG record: {0}")]
    Malformed(String),
    #[error("GSS-TSIG: {0}")]
    Context(String),
}

impl From<WireError> for TsigError {
    fn from(e: WireError) -> Self {
        TsigError::Malformed(e.to_string())
    }
}

/// A request, signed, and the MAC its reply must be chained to.
#[derive(Debug, Clone)]
pub struct Signed {
    pub bytes: Vec<u8>,
    pub mac: Vec<u8>,
}

/// Big-endian 48-bit time.
fn push_time(buf: &mut Vec<u8>, time: u64) {
    buf.extend_from_slice(&time.to_be_bytes()[2..8]);
}

/// Signs `message` (an encoded DNS message with no TSIG) at time `now`.
pub fn sign(key: &TsigKey, message: Vec<u8>, now: u64) -> Result<Signed, TsigError> {
    sign_chained(key, message, now, None)
}

/// Signs a message whose digest starts with a prior MAC (how a server signs a reply to a
/// signed request, RFC 8945 §5.3); `None` for a request.
pub fn sign_chained(
    key: &TsigKey,
    mut message: Vec<u8>,
    now: u64,
    prior_mac: Option<&[u8]>,
) -> Result<Signed, TsigError> {
    if message.len() < 12 {
        return Err(TsigError::Malformed("message shorter than a header".into()));
    }
    let key_name = wire::name_to_wire(&key.name)?;
    let alg_name = wire::name_to_wire(&format!("{}.", key.algorithm.name()))?;
    let original_id = [message[0], message[1]];

    let mut digest = Vec::with_capacity(message.len() + 128);
    if let Some(prior) = prior_mac {
        digest.extend_from_slice(&(prior.len() as u16).to_be_bytes());
        digest.extend_from_slice(prior);
    }
    digest.extend_from_slice(&message);
    digest.extend_from_slice(&key_name);
    digest.extend_from_slice(&CLASS_ANY.to_be_bytes());
    digest.extend_from_slice(&0u32.to_be_bytes());
    digest.extend_from_slice(&alg_name);
    push_time(&mut digest, now);
    digest.extend_from_slice(&DEFAULT_FUDGE.to_be_bytes());
    digest.extend_from_slice(&0u16.to_be_bytes()); // error
    digest.extend_from_slice(&0u16.to_be_bytes()); // other len
    let mac = key.mac(&digest)?;

    let mut rdata = Vec::with_capacity(alg_name.len() + 16 + mac.len());
    rdata.extend_from_slice(&alg_name);
    push_time(&mut rdata, now);
    rdata.extend_from_slice(&DEFAULT_FUDGE.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&mac);
    rdata.extend_from_slice(&original_id);
    rdata.extend_from_slice(&0u16.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());

    message.extend_from_slice(&key_name);
    message.extend_from_slice(&TSIG_TYPE.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(&rdata);
    let arcount = u16::from_be_bytes([message[10], message[11]]) + 1;
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    Ok(Signed {
        bytes: message,
        mac,
    })
}

/// The TSIG record of a message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRecord {
    pub key_name: String,
    pub algorithm: String,
    pub time: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
    /// Where the TSIG RR starts in the message.
    start: usize,
}

impl TsigRecord {
    /// The server's clock, which BADTIME replies carry in "other data".
    pub fn server_time(&self) -> Option<u64> {
        (self.other.len() == 6).then(|| {
            let mut b = [0u8; 8];
            b[2..].copy_from_slice(&self.other);
            u64::from_be_bytes(b)
        })
    }
}

/// Skips a possibly compressed name.
fn skip_name(r: &mut Reader<'_>) -> Result<(), WireError> {
    loop {
        let len = r.bytes(1)?[0];
        match len {
            0 => return Ok(()),
            l if l & 0xC0 == 0xC0 => {
                r.bytes(1)?;
                return Ok(());
            }
            l if l < 64 => {
                r.bytes(usize::from(l))?;
            }
            _ => return Err(WireError::BadName(r.pos() - 1)),
        }
    }
}

/// Where the message's TSIG RR starts, if it has one. RFC 8945 §5.1: a TSIG RR anywhere but
/// last in the additional section makes the message malformed (it is not "unsigned").
fn tsig_start(message: &[u8]) -> Result<Option<usize>, TsigError> {
    let mut r = Reader::at(message, 4);
    let questions = r.u16()?;
    let records = u32::from(r.u16()?) + u32::from(r.u16()?) + u32::from(r.u16()?);
    for _ in 0..questions {
        skip_name(&mut r)?;
        r.bytes(4)?;
    }
    let mut last = None;
    for index in 0..records {
        let start = r.pos();
        skip_name(&mut r)?;
        let rtype = r.u16()?;
        r.bytes(6)?;
        let rdlength = usize::from(r.u16()?);
        r.bytes(rdlength)?;
        if rtype == TSIG_TYPE {
            if index + 1 != records {
                return Err(TsigError::Malformed(
                    "a TSIG record that is not the last additional record".into(),
                ));
            }
            let additional = u16::from_be_bytes([message[10], message[11]]);
            if additional == 0 {
                return Err(TsigError::Malformed(
                    "a TSIG record outside the additional section".into(),
                ));
            }
            last = Some(start);
        }
    }
    Ok(last)
}

/// Finds and parses the TSIG record (the last additional RR), if there is one.
pub fn find(message: &[u8]) -> Result<Option<TsigRecord>, TsigError> {
    let Some(start) = tsig_start(message)? else {
        return Ok(None);
    };
    let mut r = Reader::at(message, start);
    let key_name = r.name()?;
    let _rtype = r.u16()?;
    // RFC 8945 §4.2: class ANY, TTL 0; anything else is not a TSIG record we may trust.
    if r.u16()? != CLASS_ANY || r.u32()? != 0 {
        return Err(TsigError::Malformed(
            "the TSIG record's class is not ANY or its TTL is not 0".into(),
        ));
    }
    let rdlength = r.u16()? as usize;
    let rdata_end = r.pos() + rdlength;
    let algorithm = r.name()?;
    let time = (u64::from(r.u16()?) << 32) | u64::from(r.u32()?);
    let fudge = r.u16()?;
    let mac_len = r.u16()? as usize;
    let mac = r.bytes(mac_len)?.to_vec();
    let original_id = r.u16()?;
    let error = r.u16()?;
    let other_len = r.u16()? as usize;
    let other = r.bytes(other_len)?.to_vec();
    if r.pos() != rdata_end {
        return Err(TsigError::Malformed(
            "RDLENGTH does not match the TSIG fields".into(),
        ));
    }
    Ok(Some(TsigRecord {
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
        start,
    }))
}

/// A name from the wire as it may be shown: anything but printable ASCII escaped, so a
/// forged name cannot write to the terminal.
fn printable(name: &str) -> String {
    name.chars().flat_map(char::escape_default).collect()
}

/// The message as it was before its TSIG RR was added: TSIG removed, ARCOUNT decremented,
/// and the ID put back to the original one.
pub fn strip(message: &[u8], tsig: &TsigRecord) -> Vec<u8> {
    let mut bare = message[..tsig.start].to_vec();
    let arcount = u16::from_be_bytes([bare[10], bare[11]]).saturating_sub(1);
    bare[10..12].copy_from_slice(&arcount.to_be_bytes());
    bare[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    bare
}

/// What a reply's TSIG said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed with our key and the MAC verifies.
    Verified,
    /// No TSIG at all: only acceptable inside a transfer (between signed messages), and
    /// otherwise only as an explanation of an error the server gave.
    Unsigned,
    /// The server answered with a TSIG error (BADSIG, BADKEY, BADTIME, ...). For BADSIG and
    /// BADKEY the reply is unsigned by definition; the error is reported, never trusted as
    /// success. `signed` when the reply's MAC verified (BADTIME replies are signed, RFC 8945
    /// §5.2.3); only then is `server_time`, the server's clock, known.
    ServerError {
        code: u16,
        server_time: Option<u64>,
        signed: bool,
    },
}

/// Verifies the replies to one signed request: one message, or the messages of a transfer.
pub struct Verifier<'k> {
    key: &'k TsigKey,
    /// The MAC the next signed message chains to: the request's, then each signed reply's.
    prior_mac: Vec<u8>,
    /// True once the first reply has been seen (later messages use the short variables).
    first_seen: bool,
    /// Unsigned messages since the last signed one (their bytes are part of the next digest).
    unsigned: Vec<u8>,
    unsigned_count: usize,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k TsigKey, request: &Signed) -> Self {
        Verifier {
            key,
            prior_mac: request.mac.clone(),
            first_seen: false,
            unsigned: Vec::new(),
            unsigned_count: 0,
        }
    }

    /// Checks one reply message at our time `now`.
    pub fn check(&mut self, message: &[u8], now: u64) -> Result<Verdict, TsigError> {
        let Some(tsig) = find(message)? else {
            if self.first_seen {
                self.unsigned_count += 1;
                if self.unsigned_count > MAX_UNSIGNED_RUN {
                    return Err(TsigError::TooManyUnsigned);
                }
                self.unsigned.extend_from_slice(message);
            }
            return Ok(Verdict::Unsigned);
        };
        if tsig.error != 0 && tsig.mac.is_empty() {
            // Inside a stream, nothing unverifiable is kept: such a message could carry any
            // records, and it is not chained into the next digest either.
            if self.first_seen {
                return Err(TsigError::ErrorInStream {
                    code: tsig.error,
                    signed: false,
                });
            }
            return Ok(Verdict::ServerError {
                code: tsig.error,
                server_time: None,
                signed: false,
            });
        }
        self.check_key(&tsig)?;
        let digest = self.digest(message, &tsig)?;
        self.key.verify_mac(&digest, &tsig.mac)?;
        let in_stream = std::mem::replace(&mut self.first_seen, true);
        self.prior_mac = tsig.mac.clone();
        self.unsigned.clear();
        self.unsigned_count = 0;
        if tsig.error != 0 {
            // A server that signs an error mid-transfer has given up on it.
            if in_stream {
                return Err(TsigError::ErrorInStream {
                    code: tsig.error,
                    signed: true,
                });
            }
            return Ok(Verdict::ServerError {
                code: tsig.error,
                server_time: tsig.server_time(),
                signed: true,
            });
        }
        if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
            return Err(TsigError::TimeSkew {
                signed: tsig.time,
                now,
                fudge: tsig.fudge,
            });
        }
        Ok(Verdict::Verified)
    }

    /// The record must name our key and our algorithm and carry a full MAC.
    fn check_key(&self, tsig: &TsigRecord) -> Result<(), TsigError> {
        if !tsig.key_name.eq_ignore_ascii_case(&self.key.name) {
            return Err(TsigError::WrongKey {
                expected: self.key.name.clone(),
                found: printable(&tsig.key_name),
            });
        }
        if !tsig
            .algorithm
            .trim_end_matches('.')
            .eq_ignore_ascii_case(self.key.algorithm.name())
        {
            return Err(TsigError::WrongAlgorithm {
                expected: self.key.algorithm,
                found: printable(&tsig.algorithm),
            });
        }
        if !self.key.algorithm.is_gss() && tsig.mac.len() != self.key.algorithm.output_len() {
            return Err(TsigError::Truncated {
                len: tsig.mac.len(),
            });
        }
        Ok(())
    }

    /// What the MAC of `message` covers (RFC 8945 §4.3, §5.3.1).
    fn digest(&self, message: &[u8], tsig: &TsigRecord) -> Result<Vec<u8>, TsigError> {
        let bare = strip(message, tsig);
        let mut digest = Vec::with_capacity(bare.len() + self.unsigned.len() + 96);
        digest.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        digest.extend_from_slice(&self.prior_mac);
        if self.first_seen {
            // RFC 8945 §5.3.1: later messages cover the unsigned ones before them and only the
            // timer variables.
            digest.extend_from_slice(&self.unsigned);
            digest.extend_from_slice(&bare);
            push_time(&mut digest, tsig.time);
            digest.extend_from_slice(&tsig.fudge.to_be_bytes());
        } else {
            digest.extend_from_slice(&bare);
            digest.extend_from_slice(&wire::name_to_wire(&tsig.key_name.to_ascii_lowercase())?);
            digest.extend_from_slice(&CLASS_ANY.to_be_bytes());
            digest.extend_from_slice(&0u32.to_be_bytes());
            digest.extend_from_slice(&wire::name_to_wire(&tsig.algorithm.to_ascii_lowercase())?);
            push_time(&mut digest, tsig.time);
            digest.extend_from_slice(&tsig.fudge.to_be_bytes());
            digest.extend_from_slice(&tsig.error.to_be_bytes());
            digest.extend_from_slice(&(tsig.other.len() as u16).to_be_bytes());
            digest.extend_from_slice(&tsig.other);
        }
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(alg: Algorithm) -> TsigKey {
        TsigKey::new(
            "test-key",
            alg,
            Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()),
        )
        .unwrap()
    }

    /// A bare DNS header + one question, as a stand-in message body.
    fn message(id: u16) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        m[0..2].copy_from_slice(&id.to_be_bytes());
        m[5] = 1; // QDCOUNT
        m.extend_from_slice(b"\x07contoso\x03com\x00\x00\x06\x00\x01");
        m
    }

    /// Signs a reply the way a server does: chained to the request's MAC.
    fn server_sign(key: &TsigKey, request_mac: &[u8], reply: Vec<u8>, now: u64) -> Vec<u8> {
        sign_chained(key, reply, now, Some(request_mac))
            .unwrap()
            .bytes
    }

    #[test]
    fn sign_then_verify_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let key = key(alg);
            let request = sign(&key, message(7), 1_000_000).unwrap();
            let found = find(&request.bytes).unwrap().unwrap();
            assert_eq!(found.mac.len(), alg.output_len());
            assert_eq!(found.key_name, "test-key.");
            assert_eq!(found.algorithm, format!("{}.", alg.name()));
            let reply = server_sign(&key, &request.mac, message(7), 1_000_010);
            let mut verifier = Verifier::new(&key, &request);
            assert_eq!(
                verifier.check(&reply, 1_000_020).unwrap(),
                Verdict::Verified,
                "{alg}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_or_skewed_clock_fails() {
        let key = key(Algorithm::HmacSha256);
        let request = sign(&key, message(9), 2_000_000).unwrap();
        let mut reply = server_sign(&key, &request.mac, message(9), 2_000_000);
        reply[3] ^= 1;
        assert!(matches!(
            Verifier::new(&key, &request).check(&reply, 2_000_000),
            Err(TsigError::BadMac { .. })
        ));
        let reply = server_sign(&key, &request.mac, message(9), 2_000_000);
        assert!(matches!(
            Verifier::new(&key, &request).check(&reply, 2_000_000 + 301),
            Err(TsigError::TimeSkew { .. })
        ));
    }

    #[test]
    fn unsigned_first_reply_is_reported_not_trusted() {
        let key = key(Algorithm::HmacSha256);
        let request = sign(&key, message(1), 5).unwrap();
        assert_eq!(
            Verifier::new(&key, &request).check(&message(1), 5).unwrap(),
            Verdict::Unsigned
        );
    }

    #[test]
    fn keys_parse_from_bind_files_and_specs_and_never_show_secrets() {
        let text = "# made by tsig-keygen\nkey \"test-key\" {\n\talgorithm hmac-sha512;\n\tsecret \"c2VjcmV0c2VjcmV0\";\n};\n";
        let key = TsigKey::from_bind_file(text).unwrap();
        assert_eq!(key.name(), "test-key.");
        assert_eq!(key.algorithm(), Algorithm::HmacSha512);
        let debug = format!("{key:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains("c2VjcmV0"),
            "{debug}"
        );
        assert_eq!(TsigKey::from_bind_file(&key.to_bind_file()).unwrap(), key);
        let spec = TsigKey::from_spec("hmac-sha1:other:c2VjcmV0c2VjcmV0").unwrap();
        assert_eq!(spec.algorithm(), Algorithm::HmacSha1);
        let err = TsigKey::from_spec("hmac-md5:k:c2VjcmV0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not supported") && err.contains("hmac-sha256"),
            "{err}"
        );
        assert!(Algorithm::from_name("hmac-sha224").is_err());
        let err = TsigKey::from_spec("hmac-sha256:k:not base64!!")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("not base64!!"), "{err}");
    }

    #[test]
    fn comment_markers_inside_a_quoted_secret_are_part_of_it() {
        // Base64 uses `/`, so `//` occurs in real secrets.
        let secret = "ab//cd+/ef//gg==";
        let text = format!(
            "/* lab key */ key \"k\" {{ algorithm hmac-sha256; # comment\n secret \"{secret}\"; // trailing\n}};\n"
        );
        let key = TsigKey::from_bind_file(&text).unwrap();
        assert_eq!(key.secret.expose_base64(), secret);
        // And a key whose secret has them round-trips through its own file.
        for _ in 0..64 {
            let key = TsigKey::generate("k", Algorithm::HmacSha512).unwrap();
            assert_eq!(TsigKey::from_bind_file(&key.to_bind_file()).unwrap(), key);
        }
    }

    #[test]
    fn gss_algorithms_take_no_secret_and_never_come_from_key_files() {
        assert_eq!(Algorithm::GssTsig.name(), "gss-tsig");
        assert_eq!(Algorithm::GssMicrosoft.name(), "gss.microsoft.com");
        assert!(Algorithm::GssTsig.is_gss() && !Algorithm::HmacSha256.is_gss());
        let err = TsigKey::new("k", Algorithm::GssTsig, Secret::new(vec![1; 32])).unwrap_err();
        assert!(err.to_string().contains("TKEY"), "{err}");
        assert!(Algorithm::from_name("gss-tsig").is_err());
        assert!(TsigKey::from_spec("gss-tsig:k:c2VjcmV0").is_err());
        assert!(!Algorithm::ALL.iter().any(|a| a.is_gss()));
    }

    #[test]
    fn generated_keys_have_full_length_secrets() {
        let a = TsigKey::generate("k", Algorithm::HmacSha384).unwrap();
        let b = TsigKey::generate("k", Algorithm::HmacSha384).unwrap();
        assert_eq!(a.secret.0.len(), 48);
        assert_ne!(a.secret, b.secret);
    }

    /// `message` with a TSIG record that carries `error` and `other` but no MAC: how a server
    /// reports BADSIG / BADKEY, and how a forger would write anything.
    fn with_unsigned_error(mut message: Vec<u8>, error: u16, other: &[u8]) -> Vec<u8> {
        let alg = wire::name_to_wire("hmac-sha256.").unwrap();
        let mut rdata = alg;
        push_time(&mut rdata, 1_000);
        rdata.extend_from_slice(&DEFAULT_FUDGE.to_be_bytes());
        rdata.extend_from_slice(&0u16.to_be_bytes());
        rdata.extend_from_slice(&message[0..2]);
        rdata.extend_from_slice(&error.to_be_bytes());
        rdata.extend_from_slice(&(other.len() as u16).to_be_bytes());
        rdata.extend_from_slice(other);
        message.extend_from_slice(&wire::name_to_wire("test-key.").unwrap());
        message.extend_from_slice(&TSIG_TYPE.to_be_bytes());
        message.extend_from_slice(&CLASS_ANY.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        message.extend_from_slice(&rdata);
        message[11] += 1;
        message
    }

    #[test]
    fn the_reply_must_use_the_keys_algorithm() {
        let ours = key(Algorithm::HmacSha256);
        let theirs = key(Algorithm::HmacSha512);
        let request = sign(&ours, message(3), 1_000).unwrap();
        let reply = server_sign(&theirs, &request.mac, message(3), 1_000);
        let err = Verifier::new(&ours, &request)
            .check(&reply, 1_000)
            .unwrap_err();
        assert!(
            matches!(&err, TsigError::WrongAlgorithm { expected: Algorithm::HmacSha256, found } if found == "hmac-sha512."),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot be trusted"), "{err}");
    }

    #[test]
    fn a_tsig_record_must_be_class_any_ttl_0_and_last() {
        let key = key(Algorithm::HmacSha256);
        let request = sign(&key, message(4), 1_000).unwrap();
        let reply = server_sign(&key, &request.mac, message(4), 1_000);
        let start = find(&reply).unwrap().unwrap().start;
        let class_at = start + "\x08test-key\x00".len() + 2;
        let mut other_class = reply.clone();
        other_class[class_at..class_at + 2].copy_from_slice(&1u16.to_be_bytes());
        let mut other_ttl = reply.clone();
        other_ttl[class_at + 5] = 1;
        // An A record after the TSIG record.
        let mut not_last = reply.clone();
        not_last.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
        not_last[11] += 1;
        for (what, bad) in [
            ("class", other_class),
            ("TTL", other_ttl),
            ("not last", not_last),
        ] {
            let verdict = Verifier::new(&key, &request).check(&bad, 1_000);
            assert!(
                matches!(verdict, Err(TsigError::Malformed(_))),
                "{what}: {verdict:?}"
            );
        }
        assert_eq!(
            Verifier::new(&key, &request).check(&reply, 1_000),
            Ok(Verdict::Verified)
        );
    }

    #[test]
    fn an_unsigned_badtime_does_not_give_a_server_clock() {
        let key = key(Algorithm::HmacSha256);
        let request = sign(&key, message(5), 1_000).unwrap();
        let claimed = 1_000_000u64.to_be_bytes()[2..].to_vec();
        let reply = with_unsigned_error(message(5), BADTIME, &claimed);
        assert_eq!(
            Verifier::new(&key, &request).check(&reply, 1_000),
            Ok(Verdict::ServerError {
                code: BADTIME,
                server_time: None,
                signed: false
            })
        );
    }

    #[test]
    fn inside_a_stream_a_tsig_error_is_fatal_signed_or_not() {
        let key = key(Algorithm::HmacSha256);
        let request = sign(&key, message(6), 1_000).unwrap();
        let first = server_sign(&key, &request.mac, message(6), 1_000);
        let mut verifier = Verifier::new(&key, &request);
        assert_eq!(verifier.check(&first, 1_000), Ok(Verdict::Verified));
        let forged = with_unsigned_error(message(6), BADSIG, &[]);
        assert_eq!(
            verifier.check(&forged, 1_000),
            Err(TsigError::ErrorInStream {
                code: BADSIG,
                signed: false
            })
        );
        // As the first reply, the same message is the server's (unsigned) answer.
        assert!(matches!(
            Verifier::new(&key, &request).check(&forged, 1_000),
            Ok(Verdict::ServerError {
                code: BADSIG,
                signed: false,
                ..
            })
        ));
    }

    #[test]
    fn key_env_errors_never_echo_a_field_wherever_the_secret_sits() {
        // Made here rather than written out: no secret-looking literal in the source.
        let secret = data_encoding::BASE64.encode(b"foobarbazqux+secret/key/material");
        let specs = [
            format!("{secret}:xmppdns:hmac-sha256"),
            format!("{secret}:hmac-sha256:xmppdns"),
            format!("hmac-sha256:{secret}:xmppdns"),
            format!("xmppdns:{secret}:hmac-sha256"),
            format!("xmppdns:hmac-sha256:{secret}"),
            format!("hmac-sha256:{secret}"),
            format!("{secret}:hmac-sha256"),
            secret.to_string(),
            format!("hmac-sha256:xmppdns:{secret}!"),
            format!("hmac-sha256::{secret}"),
            // Would parse as a key named after its secret, whose name then shows in messages.
            format!("hmac-sha256:{secret}:abcd"),
        ];
        for spec in &specs {
            let err = TsigKey::from_spec(spec).unwrap_err().to_string();
            let lower = err.to_ascii_lowercase();
            for field in spec.split(':').filter(|f| !f.is_empty()) {
                // Parts of the expected form (`hmac-sha256`) may appear as advice.
                if field != "hmac-sha256" {
                    assert!(
                        !lower.contains(&field.to_ascii_lowercase()),
                        "{spec} -> {err}"
                    );
                }
            }
            assert!(!lower.contains("zm9v"), "{spec} -> {err}");
            assert!(
                err.contains("ALGORITHM:NAME:BASE64SECRET"),
                "{spec} -> {err}"
            );
        }
        assert!(TsigKey::from_spec(&format!("hmac-sha256:xmppdns:{secret}")).is_ok());
    }
}
