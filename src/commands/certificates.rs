//! The failover gate's terminal side (#14): check the new pool's certificate before any DNS
//! change, print what was seen, and refuse (exit 3) unless `--force` when it does not cover
//! every SIP domain or is not valid now.

use std::time::Duration;

use xmppdns::audit::tls::{check_pool_certificate, PoolCertificate};
use xmppdns::failover::PreparedFailover;
use xmppdns::topology::Topology;
use xmppdns::Error;

use crate::cli::MoveOptions;

/// Checks, prints, and refuses unless `--force`; skipped with `--skip-probe`.
pub(crate) fn gate(prepared: &PreparedFailover, flags: &MoveOptions) -> Result<(), Error> {
    let pool = &prepared.to_pool;
    if flags.skip_probe {
        println!("Certificate check: skipped (--skip-probe).");
        return Ok(());
    }
    let timeout = Duration::from_secs(flags.probe_timeout);
    let found = check_pool_certificate(&prepared.old_topology, pool, timeout)
        .map_err(|e| Error::Audit(e.into()))?;
    print_checks(&found);
    if found.is_ready() {
        println!("  it covers every SIP domain and is valid.");
        return Ok(());
    }
    let refusal = Error::CertificateNotReady(Box::new(found));
    if flags.force {
        eprintln!("warning: {refusal}\nwarning: going on because of --force");
        return Ok(());
    }
    Err(refusal)
}

/// The verify stage's second look: once the services run, the certificate on the XMPP port
/// itself. Returns what is wrong, for the verify report; `None` when it is ready.
pub(crate) fn recheck(topology: &Topology, timeout: Duration) -> Option<String> {
    let pool = topology.active_pool();
    match check_pool_certificate(topology, pool, timeout) {
        Ok(found) if found.is_ready() => {
            print_checks(&found);
            println!("  it covers every SIP domain and is valid.");
            None
        }
        Ok(found) => {
            print_checks(&found);
            Some(format!(
                "the certificate of pool {}: {}",
                found.pool,
                found.problems().join("; ")
            ))
        }
        Err(e) => Some(format!(
            "the certificate of pool {} could not be checked: {e}",
            pool.name
        )),
    }
}

fn print_checks(found: &PoolCertificate) {
    println!("Certificate of {}:", found.pool);
    for check in &found.checks {
        let how = match check.mode {
            xmppdns::probe::tls::TlsMode::Starttls => "STARTTLS",
            xmppdns::probe::tls::TlsMode::Direct => "direct TLS",
        };
        println!(
            "  {} {how} to {}: {}",
            check.address, check.domain, check.detail
        );
    }
}
