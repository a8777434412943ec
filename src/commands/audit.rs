//! `audit` (check what DNS serves, with a progress bar on a terminal) and `init --from-dns`
//! (infer a starting topology from it).

use std::io::{IsTerminal, Write};

use xmppdns::audit::nagios;
use xmppdns::dns::batch::BatchSettings;
use xmppdns::error::exit;
use xmppdns::plan::render::Look;
use xmppdns::{app, Error};

use super::write_stdout;
use crate::cli::{AuditArgs, AuditFormat, InitArgs};

/// Reads and checks DNS, prints the report, and exits 4 when it holds an error-level finding.
pub(crate) fn audit(args: AuditArgs, look: Look) -> Result<u8, Error> {
    let request = app::AuditRequest {
        topology: args.topology,
        domains: args.domains,
        nameservers: args.nameservers,
        probe: args.probe,
        settings: BatchSettings {
            window: args.concurrency,
            timeout: std::time::Duration::from_millis(args.timeout_ms),
            ..Default::default()
        },
        tls: xmppdns::audit::tls::TlsOptions {
            ca_file: args.ca_file,
            warn_days: args.cert_warn_days,
        },
    };
    let mut bar = ProgressBar::new(args.format == AuditFormat::Table);
    let report = app::audit(&request, &mut |p| bar.update(p));
    bar.finish();
    let report = match (report, args.format) {
        (Err(e), AuditFormat::Nagios) => {
            print!("{}", nagios::unknown(&e.to_string()));
            return Ok(nagios::state::UNKNOWN);
        }
        (report, _) => report?,
    };
    let code = match args.format {
        AuditFormat::Table => {
            write_stdout(&xmppdns::audit::render::table(&report, look))?;
            None
        }
        AuditFormat::Json => {
            write_stdout(&xmppdns::audit::render::json(&report))?;
            None
        }
        AuditFormat::Nagios => {
            let (text, code) = nagios::render(&report, args.cert_warn_days);
            write_stdout(&text)?;
            Some(code)
        }
    };
    let code = code.unwrap_or(if report.has_errors() {
        exit::AUDIT_ERRORS
    } else {
        exit::OK
    });
    // The process ends right after: freeing a report of ten thousand names piece by piece
    // took as long as printing it, and the system takes the memory back at exit anyway.
    std::mem::forget(report);
    Ok(code)
}

/// Writes the inferred topology (never over an existing file) and its notes.
pub(crate) fn init(args: InitArgs) -> Result<u8, Error> {
    let request = app::InitRequest {
        domains: args.domains,
        nameservers: args.nameservers,
        federation: args.federation,
        settings: Default::default(),
    };
    let inferred = app::init_from_dns(&request, &mut |_| {})?;
    match args.out {
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
