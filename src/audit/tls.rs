//! Certificates on the SRV targets (rules 18-21): with `--probe`, every address of every SIP
//! domain's `_xmpp-server` targets gets STARTTLS with that domain as stream `to` and SNI, and
//! every `_xmpps-server` target a direct TLS handshake (XEP-0368); the rules here judge what
//! the handshakes showed, without touching the network.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::audit::collect::{is_ip_literal, srv_records, xmpp_owner, xmpps_owner, Snapshot};
use crate::audit::rules::{sort_findings, Finding, NameReport, Severity, Subject};
use crate::dns::batch::{QueryType, RecordData};
use crate::probe::tls::{self, Anchors, TlsCheck, TlsMode, TlsStatus, TlsTarget};
use crate::records::{Fqdn, Rdata};

/// Under this many days to expiry a certificate is a warning (rule 19), by default.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// The ALPN protocol of XEP-0368 direct TLS between servers.
const XMPPS_ALPN: &str = "xmpp-server";

/// How certificates are judged.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// A private CA (`--ca`, or the topology's `tls.ca_file`); `None`: the public roots.
    pub ca_file: Option<PathBuf>,
    /// Rule 19 warns under this many days to expiry.
    pub warn_days: i64,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_file: None,
            warn_days: EXPIRY_WARNING_DAYS,
        }
    }
}

/// One TLS check of an SRV target's address, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetTls {
    /// The SRV target whose address was checked.
    pub target: Fqdn,
    #[serde(flatten)]
    pub check: TlsCheck,
}

/// Every (target, TLS target) to check: each SIP domain's `_xmpp-server` targets with
/// STARTTLS and its `_xmpps-server` targets with direct TLS, at each address the snapshot has
/// for them, each (domain, address, mode) once.
pub fn targets(reports: &[NameReport], snapshot: &Snapshot) -> Vec<(Fqdn, TlsTarget)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for report in reports.iter().filter(|r| r.kind == Subject::SipDomain) {
        let domain = &report.name;
        let owners = [
            (xmpp_owner(domain), TlsMode::Starttls, None),
            (xmpps_owner(domain), TlsMode::Direct, Some(XMPPS_ALPN)),
        ];
        for (owner, mode, alpn) in owners {
            let Some(answer) = snapshot.answer(&owner, QueryType::Srv) else {
                continue;
            };
            for (_, srv) in srv_records(answer, &owner) {
                if srv.target.as_str() == "." || is_ip_literal(&srv.target) {
                    continue;
                }
                for ip in target_addresses(snapshot, &srv.target) {
                    let address = SocketAddr::new(ip, srv.port);
                    if seen.insert((domain.clone(), address, mode == TlsMode::Direct)) {
                        let target = TlsTarget {
                            address,
                            domain: domain.bare().to_string(),
                            mode,
                            alpn,
                        };
                        out.push((srv.target.clone(), target));
                    }
                }
            }
        }
    }
    out
}

fn target_addresses(snapshot: &Snapshot, target: &Fqdn) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for qtype in [QueryType::A, QueryType::Aaaa] {
        let Some(response) = snapshot.answer(target, qtype) else {
            continue;
        };
        for record in response.answers.iter().filter(|r| &r.name == target) {
            match &record.data {
                RecordData::Known(Rdata::A(ip)) => ips.push(IpAddr::V4(*ip)),
                RecordData::Known(Rdata::Aaaa(ip)) => ips.push(IpAddr::V6(*ip)),
                _ => {}
            }
        }
    }
    ips.sort();
    ips.dedup();
    ips
}

/// Runs the TLS checks of `targets`.
pub fn run(targets: &[(Fqdn, TlsTarget)], anchors: &Anchors, timeout: Duration) -> Vec<TargetTls> {
    let asked: Vec<TlsTarget> = targets.iter().map(|(_, t)| t.clone()).collect();
    tls::check_all(&asked, anchors, timeout)
        .into_iter()
        .zip(targets)
        .map(|(check, (target, _))| TargetTls {
            target: target.clone(),
            check,
        })
        .collect()
}

/// Rules 18-21 on each SIP domain's report, from the checks made with that domain.
pub fn findings(reports: &mut [NameReport], checks: &[TargetTls], warn_days: i64) {
    for report in reports.iter_mut().filter(|r| r.kind == Subject::SipDomain) {
        let domain = report.name.clone();
        let mut found = Vec::new();
        for checked in checks.iter().filter(|c| c.check.domain == domain.bare()) {
            judge(&mut found, &domain, checked, warn_days);
        }
        if !found.is_empty() {
            report.findings.extend(found);
            sort_findings(&mut report.findings);
        }
    }
}

/// `edgepool1.contoso.com. (STARTTLS)`: the record a TLS finding is about.
fn record_of(checked: &TargetTls) -> String {
    let how = match checked.check.mode {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Direct => "direct TLS",
    };
    format!("{} ({how})", checked.target)
}

fn finding(domain: &Fqdn, rule: &str, severity: Severity, record: &str) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        domain: domain.clone(),
        record: record.to_string(),
        message: String::new(),
        fix: String::new(),
    }
}

/// The findings of one check.
fn judge(out: &mut Vec<Finding>, domain: &Fqdn, checked: &TargetTls, warn_days: i64) {
    let check = &checked.check;
    let record = record_of(checked);
    let at = format!("{} ({})", checked.target, check.address);
    let mut add = |rule: &str, severity, message: String, fix: &str| {
        let mut f = finding(domain, rule, severity, &record);
        f.message = message;
        f.fix = fix.to_string();
        out.push(f);
    };
    match check.status {
        TlsStatus::NoStarttls => add(
            "21",
            Severity::Error,
            format!("{at} offers no STARTTLS: partners that require TLS (Lync, Skype for Business and most XMPP servers do) cannot federate"),
            "enable TLS on the XMPP service of the Edge pool",
        ),
        TlsStatus::OldProtocol => add(
            "21",
            Severity::Warning,
            format!("{at} speaks only TLS 1.0/1.1 ({})", check.detail),
            "enable TLS 1.2 on the Edge servers (Windows: the SCHANNEL protocol settings)",
        ),
        TlsStatus::Failed => add(
            "21",
            Severity::Error,
            format!("{at}: {}", check.detail),
            "check the certificate and TLS settings of the Edge pool's XMPP service",
        ),
        TlsStatus::Handshake => {
            if let Some(facts) = &check.certificate {
                judge_certificate(&mut add, &at, check, facts, warn_days);
            }
        }
        // Nothing to judge: rule 9 already reports an address that does not answer, and a
        // stream refused for this domain names the domain in the probe list.
        TlsStatus::Refused | TlsStatus::Unreachable => {}
    }
}

/// Rules 18, 19 and 20 for a certificate the handshake showed.
fn judge_certificate(
    add: &mut impl FnMut(&str, Severity, String, &str),
    at: &str,
    check: &TlsCheck,
    facts: &tls::CertificateFacts,
    warn_days: i64,
) {
    let names = if facts.dns_names.is_empty() {
        format!("CN {}", facts.common_name.as_deref().unwrap_or("(none)"))
    } else {
        facts.dns_names.join(", ")
    };
    if !check.covers_domain {
        add("18", Severity::Error,
            format!("the certificate of {at} is for {names}: it does not cover {}", check.domain),
            &format!("request a certificate with {} among its subject alternative names (Lync: the Access Edge external certificate)", check.domain));
    }
    let now = check.checked_at;
    let day = |t: i64| crate::clock::rfc3339(u64::try_from(t).unwrap_or(0));
    let days = facts.days_left(now);
    if now >= facts.not_after {
        add(
            "19",
            Severity::Error,
            format!(
                "the certificate of {at} expired on {}",
                day(facts.not_after)
            ),
            "renew the certificate and assign it to the Edge pool",
        );
    } else if now < facts.not_before {
        add(
            "19",
            Severity::Error,
            format!(
                "the certificate of {at} is not valid before {}",
                day(facts.not_before)
            ),
            "check the Edge servers' clocks, or assign a certificate valid now",
        );
    } else if days < warn_days {
        add(
            "19",
            Severity::Warning,
            format!(
                "the certificate of {at} expires in {days} day(s), on {}",
                day(facts.not_after)
            ),
            "renew the certificate before it expires",
        );
    }
    if let Some(why) = &facts.chain_error {
        let kind = if facts.self_signed {
            "self-signed; "
        } else {
            ""
        };
        add(
            "20",
            Severity::Error,
            format!(
                "the certificate chain of {at} does not validate: {kind}issuer {}: {why}",
                facts.issuer
            ),
            "use a certificate from a public CA, and send the intermediate certificates with it",
        );
    }
    judge_eku(add, at, facts);
}

/// Rule 20's EKU notes: no server EKU is a warning, a client EKU is worth knowing.
fn judge_eku(
    add: &mut impl FnMut(&str, Severity, String, &str),
    at: &str,
    facts: &tls::CertificateFacts,
) {
    if !facts.server_auth {
        add(
            "20",
            Severity::Warning,
            format!("the certificate of {at} has no server authentication EKU"),
            "request the certificate with the Server Authentication EKU",
        );
    }
    if facts.client_auth {
        add("20", Severity::Info,
            format!("the certificate of {at} also has the client authentication EKU (used by Lync for mutual TLS)"),
            "nothing to do");
    }
}

/// What the failover gate found about the new pool's certificate.
#[derive(Debug, Clone, Serialize)]
pub struct PoolCertificate {
    pub pool: String,
    /// Every check made, 5269 first, then the SIP TLS port for addresses where 5269 did not
    /// answer.
    pub checks: Vec<TlsCheck>,
    /// SIP domains a certificate of the pool does not cover.
    pub missing: Vec<String>,
    /// Expired or not yet valid certificates, as `address: why`.
    pub invalid: Vec<String>,
    /// No certificate could be seen at all (nothing answered on either port).
    pub unchecked: bool,
}

impl PoolCertificate {
    /// True when the certificate covers every SIP domain and is valid now.
    pub fn is_ready(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty() && !self.unchecked
    }

    /// What is wrong, one line each with what to do, for the gate's refusal and the verify
    /// stage's report.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.missing.is_empty() {
            let missing = self.missing.join(", ");
            lines.push(format!(
                "it does not cover {missing}: request a certificate with these subject alternative names ({missing}) for the Access Edge external interface"
            ));
        }
        for why in &self.invalid {
            lines.push(format!("{why}: renew it before the move"));
        }
        if self.unchecked {
            lines.push("no address answered TLS on the XMPP port nor on the SIP TLS port (sip_tls_port, default 5061), so it could not be checked".to_string());
        }
        lines
    }
}

/// The failover gate, before the Lync steps: the new pool's certificate must cover every SIP
/// domain and be valid. It is looked at with STARTTLS on the XMPP port (each SIP domain as
/// `to` and SNI) where that answers, else with a direct TLS handshake on the pool's SIP TLS
/// port (`sip_tls_port`, 5061), where the Access Edge serves the same certificate.
pub fn check_pool_certificate(
    topology: &crate::topology::Topology,
    pool: &crate::topology::Pool,
    timeout: Duration,
) -> Result<PoolCertificate, tls::TlsSetupError> {
    let anchors = Anchors::load(topology.tls_ca_file.as_deref())?;
    let domains: Vec<String> = topology
        .sip_domains
        .iter()
        .map(|d| d.name.bare().to_string())
        .collect();
    let ips: Vec<IpAddr> = pool
        .ipv4
        .iter()
        .map(|ip| IpAddr::V4(*ip))
        .chain(pool.ipv6.iter().map(|ip| IpAddr::V6(*ip)))
        .collect();
    let per_domain = |port: u16, mode: TlsMode, ips: &[IpAddr]| -> Vec<TlsTarget> {
        ips.iter()
            .flat_map(|ip| {
                domains.iter().map(move |d| TlsTarget {
                    address: SocketAddr::new(*ip, port),
                    domain: d.clone(),
                    mode,
                    alpn: None,
                })
            })
            .collect()
    };
    let mut checks = tls::check_all(
        &per_domain(topology.srv.port, TlsMode::Starttls, &ips),
        &anchors,
        timeout,
    );
    let silent: Vec<IpAddr> = ips
        .iter()
        .copied()
        .filter(|ip| {
            checks
                .iter()
                .filter(|c| c.address.ip() == *ip)
                .all(|c| c.status == TlsStatus::Unreachable)
        })
        .collect();
    let fallback = per_domain(pool.sip_tls_port, TlsMode::Direct, &silent);
    checks.extend(tls::check_all(&fallback, &anchors, timeout));
    Ok(judge_pool(&pool.name, &domains, checks))
}

/// Which domains the certificates seen do not cover, and which are not valid now. A domain
/// whose own handshake could not be made (the stream was refused for it) is judged on the
/// certificate the same address presented for another domain: the Edge has one.
fn judge_pool(pool: &str, domains: &[String], checks: Vec<TlsCheck>) -> PoolCertificate {
    let mut missing = BTreeSet::new();
    let mut invalid = BTreeSet::new();
    let mut seen_any = false;
    let addresses: BTreeSet<SocketAddr> = checks.iter().map(|c| c.address).collect();
    for address in addresses {
        let here: Vec<&TlsCheck> = checks.iter().filter(|c| c.address == address).collect();
        let Some(any) = here.iter().find_map(|c| c.certificate.as_ref()) else {
            continue;
        };
        seen_any = true;
        for domain in domains {
            let facts = here
                .iter()
                .find(|c| &c.domain == domain)
                .and_then(|c| c.certificate.as_ref())
                .unwrap_or(any);
            if !facts.covers(domain) {
                missing.insert(domain.clone());
            }
            let now = here[0].checked_at;
            if now >= facts.not_after {
                let when = crate::clock::rfc3339(u64::try_from(facts.not_after).unwrap_or(0));
                invalid.insert(format!("{address}: expired on {when}"));
            } else if now < facts.not_before {
                invalid.insert(format!("{address}: not valid yet"));
            }
        }
    }
    PoolCertificate {
        pool: pool.to_string(),
        checks,
        missing: missing.into_iter().collect(),
        invalid: invalid.into_iter().collect(),
        unchecked: !seen_any,
    }
}
