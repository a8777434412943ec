//! The commands' terminal side: printing between the library's steps, confirmation prompts,
//! the progress bar. Everything that decides or touches DNS is in the library.

use std::io::{IsTerminal, Write};

use xmppdns::error::exit;
use xmppdns::plan::render::{self, Look};
use xmppdns::provider::Environment;
use xmppdns::{app, failover, Error};

use crate::cli::{self, Format};

/// Prints what an apply did.
pub(crate) fn print_applied(report: &app::ApplyReport) {
    for applied in &report.applied {
        println!(
            "Applied {} change(s) to {}: {}",
            applied.changes, applied.zone, applied.detail
        );
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("Read back: DNS matches the plan.");
}

/// `failover` (`to` given) and `failback` (`to` from the journal).
pub(crate) fn run_move(
    topology_path: &std::path::Path,
    to: Option<String>,
    flags: &cli::MoveOptions,
    promote: bool,
    look: Look,
    command: &'static str,
) -> Result<u8, Error> {
    let started = std::time::Instant::now();
    let env = Environment::system();
    let options = failover::Options {
        to,
        promote,
        skip_probe: flags.skip_probe,
        force: flags.force,
        probe_timeout: std::time::Duration::from_secs(flags.probe_timeout),
        journal: flags.journal.clone(),
    };
    let prepared = failover::prepare(topology_path, &options, &env, command)?;
    tracing::info!("read, probed and planned after {:?}", started.elapsed());
    // Before anything is applied: a bad --nameserver is an error now, not after the change.
    let nameservers = failover::parse_nameservers(&flags.nameservers)?;
    let (from_pool, to_pool) = (prepared.from_pool.clone(), prepared.to_pool.clone());
    println!(
        "XMPP federation {command}: {} (site {}) -> {} (site {})",
        from_pool.name, from_pool.site, to_pool.name, to_pool.site
    );
    match &prepared.probes {
        None => println!(
            "Port {} probe: skipped (--skip-probe).",
            prepared.old_topology.srv.port
        ),
        Some(results) => {
            println!(
                "Port {} probe of {}:",
                prepared.old_topology.srv.port, to_pool.name
            );
            print!("{}", failover::report::probes(results));
            if !results.iter().any(|r| r.is_ready()) {
                eprintln!("warning: no address answered as a ready XMPP server; going on because of --force");
            }
        }
    }
    let plan = prepared.apply.plan.clone();
    let topology_after = prepared.apply.topology.clone();
    let desired = xmppdns::plan::desired(&topology_after);
    print!("{}", render::table(&plan, look));

    let runbook_inputs = |dns: failover::runbook::DnsStep| {
        failover::runbook::steps(&failover::runbook::Inputs {
            from: &from_pool,
            to: &to_pool,
            plan: &plan,
            probes: prepared.probes.as_deref(),
            dns,
            srv_port: prepared.old_topology.srv.port,
        })
    };
    let finish_runbook = |dns: failover::runbook::DnsStep| -> Result<(), Error> {
        let steps = runbook_inputs(dns);
        println!("\nRunbook (the steps xmppdns cannot run, in order):");
        print!("{}", failover::runbook::text(&steps));
        if let Some(path) = &flags.runbook {
            let heading = format!(
                "XMPP federation {command}: {} (site {}) -> {} (site {}), written by xmppdns",
                from_pool.name, from_pool.site, to_pool.name, to_pool.site
            );
            std::fs::write(path, failover::runbook::powershell(&steps, &heading)).map_err(
                |source| Error::Write {
                    path: path.clone(),
                    source,
                },
            )?;
            println!("Runbook written to {}.", path.display());
        }
        Ok(())
    };

    if flags.dry_run {
        println!("Dry run: nothing was changed.");
        finish_runbook(failover::runbook::DnsStep::DryRun)?;
        return Ok(exit::OK);
    }
    if !plan.is_empty() {
        if !flags.yes {
            confirm()?;
        }
        match app::execute(prepared.apply) {
            Ok(report) => print_applied(&report),
            Err(error) => {
                // DNS may be partly changed: the admin still needs the steps, with the DNS
                // step marked as not complete. The error itself follows on stderr.
                finish_runbook(failover::runbook::DnsStep::Incomplete)?;
                return Err(error);
            }
        }
        tracing::info!("applied and read back after {:?}", started.elapsed());
    }
    match failover::write_topology(topology_path, &prepared.edit)? {
        Some(said) => println!("Topology {} updated: {said}.", topology_path.display()),
        None => println!("Topology {} already up to date.", topology_path.display()),
    }

    let mut code = exit::OK;
    let authority = failover::authoritative_servers(&topology_after, &nameservers);
    if let Some(note) = &authority.note {
        println!("Note: {note}.");
    }
    if !authority.is_empty() {
        let expected = failover::propagation::expectations(&desired, &plan);
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(flags.propagation_timeout);
        let statuses =
            failover::propagation::wait(&expected, &authority.zones, started, deadline, &env.clock);
        println!("Propagation:");
        print!("{}", failover::report::propagation(&statuses));
        if statuses.iter().any(|s| !s.converged) {
            code = exit::NOT_PROPAGATED;
        }
    }
    finish_runbook(failover::runbook::DnsStep::Done)?;
    Ok(code)
}

/// Creates a file only its owner can read (it holds a secret); refuses to overwrite.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// Asks on the terminal; without one, refuses rather than guess.
pub(crate) fn confirm() -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotConfirmed(
            "standard input is not a terminal; pass --yes to apply without asking".into(),
        ));
    }
    print!("Apply these changes? [y/N] ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::NotConfirmed("declined at the prompt".into()))
    }
}

/// `audit`: reads and checks DNS (with a progress bar on a terminal), prints the report, and
/// exits 4 when it holds an error-level finding.
pub(crate) fn run_audit(
    request: &app::AuditRequest,
    format: Format,
    look: Look,
) -> Result<u8, Error> {
    let mut bar = ProgressBar::new(format == Format::Table);
    let report = app::audit(request, &mut |p| bar.update(p));
    bar.finish();
    let report = report?;
    match format {
        Format::Table => print!("{}", xmppdns::audit::render::table(&report, look)),
        Format::Json => print!("{}", xmppdns::audit::render::json(&report)),
    }
    Ok(if report.has_errors() {
        exit::AUDIT_ERRORS
    } else {
        exit::OK
    })
}

/// `init --from-dns`: writes the inferred topology (never over an existing file) and its notes.
pub(crate) fn run_init(
    domains: Vec<String>,
    nameservers: Vec<String>,
    federation: Option<String>,
    out: Option<std::path::PathBuf>,
) -> Result<u8, Error> {
    let request = app::InitRequest {
        domains,
        nameservers,
        federation,
        settings: Default::default(),
    };
    let inferred = app::init_from_dns(&request, &mut |_| {})?;
    match out {
        None => print!("{}", inferred.json()),
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            let written = options
                .open(&path)
                .and_then(|mut f| f.write_all(inferred.json().as_bytes()));
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Audit(xmppdns::audit::AuditError::Exists {
                        path: path.display().to_string(),
                    }))
                }
                Err(source) => return Err(Error::Write { path, source }),
                Ok(()) => eprintln!("wrote {}", path.display()),
            }
        }
    }
    for note in &inferred.notes {
        eprintln!("note: {note}");
    }
    Ok(exit::OK)
}

/// A progress bar on stderr for long audits: only on a terminal, only for table output, and
/// only once a stage has enough questions to be worth watching.
struct ProgressBar {
    enabled: bool,
    bar: Option<(indicatif::ProgressBar, &'static str)>,
}

impl ProgressBar {
    /// Below this many questions a stage is over before a bar would be seen.
    const WORTH_SHOWING: usize = 500;

    fn new(wanted: bool) -> Self {
        ProgressBar {
            enabled: wanted && std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn update(&mut self, progress: xmppdns::audit::Progress) {
        if !self.enabled || progress.total < Self::WORTH_SHOWING {
            return;
        }
        let same_stage = self.bar.as_ref().is_some_and(|(_, s)| *s == progress.stage);
        if !same_stage {
            self.finish();
            let bar = indicatif::ProgressBar::new(progress.total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:20} [{bar:40}] {pos}/{len} queries, {elapsed} ({eta} left)",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(progress.stage);
            self.bar = Some((bar, progress.stage));
        }
        if let Some((bar, _)) = &self.bar {
            bar.set_position(progress.done as u64);
        }
    }

    fn finish(&mut self) {
        if let Some((bar, _)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
