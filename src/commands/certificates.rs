//! The failover gate's terminal side (#14): check the new pool's certificate before any DNS
//! change, print what was seen, and refuse (exit 3) unless `--force` when it does not cover
//! every SIP domain or is not valid now.

use std::time::Duration;

use xmppdns::audit::tls::check_pool_certificate;
use xmppdns::failover::PreparedFailover;
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
    println!("Certificate of {}:", pool.name);
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
