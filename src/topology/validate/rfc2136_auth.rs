//! `provider.auth` of the rfc2136 provider: TSIG, GSS-TSIG (Kerberos) or explicitly unsigned,
//! and the GSS-TSIG settings that only make sense with it.

use std::path::Path;

use super::Problems;
use crate::topology::raw::RawRfc2136;
use crate::topology::{GssTsigConfig, Rfc2136Auth};

const CHOICES: &str = "give `key_file` or `key_env` (TSIG, `\"auth\": \"tsig\"`), or `\"auth\": \"gss-tsig\"` (Kerberos: Windows DNS / Active Directory \"secure only\" zones), or `\"auth\": \"none\"` (unsigned updates, for zones that accept them)";

/// The fields of `RawRfc2136` that decide how messages are authenticated.
pub(super) struct RawAuth {
    auth: Option<String>,
    keytab: Option<String>,
    principal: Option<String>,
    server_principal: Option<String>,
    gss_algorithm: Option<String>,
    transfer: bool,
}

impl RawAuth {
    pub(super) fn of(raw: &RawRfc2136) -> Self {
        RawAuth {
            auth: raw.auth.clone(),
            keytab: raw.keytab.clone(),
            principal: raw.principal.clone(),
            server_principal: raw.server_principal.clone(),
            gss_algorithm: raw.gss_algorithm.clone(),
            transfer: raw.transfer_server.is_some()
                || raw.transfer_key_file.is_some()
                || raw.transfer_key_env.is_some(),
        }
    }
}

/// `has_key`: whether `key_file` or `key_env` was given.
pub(super) fn validate(
    raw: &RawAuth,
    has_key: bool,
    base: &Path,
    problems: &mut Problems,
) -> Rfc2136Auth {
    let auth = match raw.auth.as_deref() {
        None if has_key => Rfc2136Auth::Tsig,
        None => {
            problems.add(
                "provider.auth",
                format!("no key and no `auth`: updates would go out unsigned; {CHOICES}"),
            );
            Rfc2136Auth::Tsig
        }
        Some("tsig") => {
            if !has_key {
                problems.add("provider.auth", format!("`tsig` needs a key; {CHOICES}"));
            }
            Rfc2136Auth::Tsig
        }
        Some("gss-tsig") => gss(raw, has_key, base, problems),
        Some("none") => {
            if has_key {
                problems.add(
                    "provider.auth",
                    "`none` sends unsigned messages: remove `key_file` / `key_env`, or use `tsig`",
                );
            }
            Rfc2136Auth::None
        }
        Some(other) => {
            problems.add(
                "provider.auth",
                format!("`{other}` is not an authentication; use `tsig`, `gss-tsig` or `none`"),
            );
            Rfc2136Auth::Tsig
        }
    };
    if !matches!(auth, Rfc2136Auth::GssTsig(_)) {
        for (field, given) in [
            ("keytab", &raw.keytab),
            ("principal", &raw.principal),
            ("server_principal", &raw.server_principal),
            ("gss_algorithm", &raw.gss_algorithm),
        ] {
            if given.is_some() {
                problems.add(
                    format!("provider.{field}"),
                    "only used with `\"auth\": \"gss-tsig\"`",
                );
            }
        }
    }
    auth
}

fn gss(raw: &RawAuth, has_key: bool, base: &Path, problems: &mut Problems) -> Rfc2136Auth {
    if has_key {
        problems.add(
            "provider.auth",
            "`gss-tsig` uses Kerberos, not a TSIG key: remove `key_file` / `key_env`",
        );
    }
    if raw.transfer {
        problems.add(
            "provider.transfer_server",
            "not used with `gss-tsig`: reads are GSS-signed queries to `server` (Windows DNS and Samba do not serve AXFR to these clients)",
        );
    }
    if raw.keytab.is_some() && raw.principal.is_none() {
        problems.add(
            "provider.principal",
            "a `keytab` needs the `principal` to take from it (e.g. xmppdns@EXAMPLE.COM)",
        );
    }
    for (field, value) in [
        ("principal", &raw.principal),
        ("server_principal", &raw.server_principal),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.contains(char::is_whitespace))
        {
            problems.add(
                format!("provider.{field}"),
                "not a Kerberos principal (no spaces, not empty)",
            );
        }
    }
    let microsoft_algorithm = match raw.gss_algorithm.as_deref() {
        None | Some("gss-tsig") => false,
        Some("gss.microsoft.com") => true,
        Some(other) => {
            problems.add(
                "provider.gss_algorithm",
                format!("`{other}` is not a GSS-TSIG algorithm name; use `gss-tsig` (default) or `gss.microsoft.com` (Windows 2000)"),
            );
            false
        }
    };
    Rfc2136Auth::GssTsig(GssTsigConfig {
        keytab: raw.keytab.as_ref().map(|k| base.join(k)),
        principal: raw.principal.clone(),
        server_principal: raw.server_principal.clone(),
        microsoft_algorithm,
    })
}
