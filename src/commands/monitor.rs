//! `monitor`: the audit on a schedule, served over HTTP until SIGTERM or SIGINT.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xmppdns::app::AuditRequest;
use xmppdns::error::exit;
use xmppdns::monitor::{self, MonitorOptions};
use xmppdns::Error;

use crate::cli::MonitorArgs;

pub(crate) fn monitor(args: MonitorArgs) -> Result<u8, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| Error::Argument {
            name: "monitor".into(),
            message: format!("cannot handle signal {signal}: {e}"),
        })?;
    }
    if !monitor::is_loopback(&args.listen) {
        eprintln!(
            "warning: listening on {}, which is not a loopback address: the status page and the metrics have no authentication",
            args.listen
        );
    }
    let options = MonitorOptions {
        topology: args.topology.clone(),
        listen: args.listen,
        interval: Duration::from_secs(args.interval),
        audit: AuditRequest {
            topology: Some(args.topology),
            nameservers: args.nameservers,
            probe: args.probe,
            tls: xmppdns::audit::tls::TlsOptions {
                ca_file: args.ca_file,
                warn_days: args.cert_warn_days,
            },
            ..Default::default()
        },
        max_cycles: args.max_cycles,
    };
    eprintln!("monitor: serving http://{}/metrics", args.listen);
    let summary = monitor::run(&options, stop)?;
    let rss = summary
        .rss_kib
        .map_or_else(|| "unknown".to_string(), |k| format!("{k} KiB"));
    eprintln!(
        "monitor: stopped after {} cycle(s); resident memory {rss}",
        summary.cycles
    );
    Ok(exit::OK)
}
