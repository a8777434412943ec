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
    /// `key_file` or `key_env` given (usable or not: a bad one has its own problem).
    has_key: bool,
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
            has_key: raw.key_file.is_some() || raw.key_env.is_some(),
        }
    }
}

pub(super) fn validate(raw: &RawAuth, base: &Path, problems: &mut Problems) -> Rfc2136Auth {
    let has_key = raw.has_key;
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::{json, Value};

    use crate::topology::{GssTsigConfig, ProviderConfig, Rfc2136Auth, Topology, TopologyError};

    fn load(provider: Value) -> Result<Topology, TopologyError> {
        let mut value = json!({
            "zones": ["contoso.com"], "sip_domains": ["contoso.com"],
            "active_pool": "P1", "federation": {"name": "xmpp.contoso.com"},
            "pools": [{"name": "P1", "site": "S", "fqdn": "p1.contoso.com", "ipv4": ["192.0.2.1"]}]
        });
        let mut p = json!({"kind": "rfc2136", "server": "192.0.2.53"});
        p.as_object_mut()
            .unwrap()
            .extend(provider.as_object().unwrap().clone());
        value["provider"] = p;
        Topology::from_json(&value.to_string(), Path::new("/t/topology.json"))
    }

    fn auth(provider: Value) -> Rfc2136Auth {
        match load(provider).unwrap().provider {
            ProviderConfig::Rfc2136(c) => c.auth,
            other => panic!("{other:?}"),
        }
    }

    fn problems(provider: Value) -> String {
        match load(provider) {
            Err(e @ TopologyError::Invalid { .. }) => e.to_string(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn tsig_is_the_default_with_a_key_and_gss_tsig_takes_its_own_settings() {
        assert_eq!(auth(json!({"key_env": "K"})), Rfc2136Auth::Tsig);
        assert_eq!(auth(json!({"auth": "none"})), Rfc2136Auth::None);
        assert_eq!(
            auth(json!({"auth": "gss-tsig", "keytab": "xmppdns.keytab",
                        "principal": "xmppdns@CONTOSO.COM", "gss_algorithm": "gss.microsoft.com"})),
            Rfc2136Auth::GssTsig(GssTsigConfig {
                keytab: Some(PathBuf::from("/t/xmppdns.keytab")),
                principal: Some("xmppdns@CONTOSO.COM".into()),
                server_principal: None,
                microsoft_algorithm: true,
            })
        );
    }

    #[test]
    fn no_key_and_no_auth_is_refused_naming_the_three_choices() {
        let text = problems(json!({}));
        for choice in ["key_file", "\"auth\": \"gss-tsig\"", "\"auth\": \"none\""] {
            assert!(text.contains(choice), "{text}");
        }
        assert!(problems(json!({"auth": "tsig"})).contains("`tsig` needs a key"));
        assert!(problems(json!({"auth": "kerberos"})).contains("use `tsig`, `gss-tsig` or `none`"));
    }

    #[test]
    fn settings_that_do_not_fit_the_auth_are_refused() {
        let text = problems(json!({"auth": "none", "key_env": "K", "keytab": "k"}));
        assert!(
            text.contains("remove `key_file`") && text.contains("provider.keytab"),
            "{text}"
        );
        let text = problems(
            json!({"auth": "gss-tsig", "keytab": "k", "transfer_server": "192.0.2.54",
                                   "gss_algorithm": "hmac-sha256"}),
        );
        assert!(text.contains("needs the `principal`"), "{text}");
        assert!(text.contains("provider.transfer_server"), "{text}");
        assert!(text.contains("not a GSS-TSIG algorithm"), "{text}");
    }
}
