//! `xmppdns monitor`: the audit (and probes) on a schedule, served over HTTP as Prometheus
//! metrics (`/metrics`), a health check (`/healthz`) and a status page (`/`).
//!
//! One thread runs the cycles, one after the other (a cycle never overlaps the next, whatever
//! the interval); the HTTP thread only reads the last cycle's rendered texts, which each cycle
//! replaces whole, so memory does not grow with the number of cycles. Both stop when `stop` is
//! set (the binary sets it on SIGTERM/SIGINT).

pub mod metrics;
pub mod page;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::app::{self, AuditRequest};
use crate::Error;

/// How often the HTTP thread and the wait between cycles look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// What `monitor` was asked for.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    pub topology: PathBuf,
    pub listen: SocketAddr,
    /// From the start of one cycle to the start of the next (a longer cycle delays the next).
    pub interval: Duration,
    /// The audit request run each cycle (its `topology` is the file above).
    pub audit: AuditRequest,
    /// Stop after this many cycles (tests, memory measurements); `None`: until stopped.
    pub max_cycles: Option<u64>,
}

/// The texts the HTTP side serves, replaced whole by each cycle.
#[derive(Debug, Clone)]
struct Served {
    metrics: String,
    page: String,
    /// `/healthz`: the last cycle ran.
    healthy: bool,
    cycles: u64,
}

/// How the monitor ended.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSummary {
    pub cycles: u64,
    /// Resident memory at the end, in KiB (Linux: /proc/self/status VmRSS).
    pub rss_kib: Option<u64>,
}

/// True when the address is loopback (the page and metrics have no authentication).
pub fn is_loopback(address: &SocketAddr) -> bool {
    address.ip().is_loopback()
}

/// Runs until `stop` is set or `max_cycles` cycles have run; the first cycle starts at once.
pub fn run(options: &MonitorOptions, stop: Arc<AtomicBool>) -> Result<MonitorSummary, Error> {
    // Loaded once here so that its warnings are logged once, and a bad file fails at start.
    app::load_topology(&options.topology)?;
    let server = tiny_http::Server::http(options.listen).map_err(|e| Error::Argument {
        name: "--listen".into(),
        message: format!("cannot listen on {}: {e}", options.listen),
    })?;
    let served = Arc::new(Mutex::new(Served {
        metrics: String::new(),
        page: page::render(&page::PageInput {
            report: None,
            error: None,
            last_cycle: "not yet",
            cycles: 0,
        }),
        healthy: false,
        cycles: 0,
    }));
    let cycles = std::thread::scope(|scope| {
        let http = scope.spawn(|| serve(&server, &served, &stop));
        let cycles = run_cycles(options, &served, &stop);
        stop.store(true, Ordering::SeqCst);
        let _ = http.join();
        cycles
    });
    Ok(MonitorSummary {
        cycles,
        rss_kib: resident_kib(),
    })
}

/// The cycle loop: one cycle, then the rest of the interval, until stopped.
fn run_cycles(options: &MonitorOptions, served: &Mutex<Served>, stop: &AtomicBool) -> u64 {
    let mut cycles = 0;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        cycles += 1;
        let next = cycle(options, cycles);
        *served.lock().unwrap_or_else(|e| e.into_inner()) = next;
        if options.max_cycles.is_some_and(|max| cycles >= max) {
            break;
        }
        let wake = started + options.interval;
        while !stop.load(Ordering::SeqCst) && Instant::now() < wake {
            let left = wake.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(STOP_POLL));
        }
    }
    cycles
}

/// One audit and its rendered texts.
fn cycle(options: &MonitorOptions, number: u64) -> Served {
    let started = Instant::now();
    let (topology, result) = match crate::topology::Topology::load(&options.topology) {
        Ok(t) => {
            let result = app::audit_with(Some(&t), &options.audit, &mut |_| {});
            (Some(t), result)
        }
        Err(e) => (None, Err(Error::from(e))),
    };
    let finished_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let Err(e) = &result {
        tracing::warn!("monitor cycle {number} failed: {e}");
    }
    let report = result.as_ref().ok();
    let error = result.as_ref().err().map(ToString::to_string);
    let metrics = metrics::render(&metrics::CycleOutcome {
        report,
        topology: topology.as_ref(),
        finished_at,
        duration_seconds: started.elapsed().as_secs_f64(),
    });
    let last_cycle = crate::clock::rfc3339(finished_at as u64);
    let page = page::render(&page::PageInput {
        report,
        error: error.as_deref(),
        last_cycle: &last_cycle,
        cycles: number,
    });
    Served {
        metrics,
        page,
        healthy: report.is_some(),
        cycles: number,
    }
}

/// The HTTP side: answers from the last cycle's texts until `stop`.
fn serve(server: &tiny_http::Server, served: &Mutex<Served>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(STOP_POLL) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("monitor HTTP: {e}");
                continue;
            }
        };
        let now = served.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let response = respond(request.method(), request.url(), &now);
        let _ = request.respond(response);
    }
}

fn respond(
    method: &tiny_http::Method,
    url: &str,
    served: &Served,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = url.split('?').next().unwrap_or(url);
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return text(
            405,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".into(),
        );
    }
    match path {
        "/metrics" if served.cycles == 0 => text(
            503,
            "text/plain; charset=utf-8",
            "the first cycle has not finished\n".into(),
        ),
        "/metrics" => text(200, metrics::CONTENT_TYPE, served.metrics.clone()),
        "/healthz" if served.healthy => text(200, "text/plain; charset=utf-8", "ok\n".into()),
        "/healthz" if served.cycles == 0 => {
            text(503, "text/plain; charset=utf-8", "starting\n".into())
        }
        "/healthz" => text(
            503,
            "text/plain; charset=utf-8",
            "the last cycle failed\n".into(),
        ),
        "/" => text(200, "text/html; charset=utf-8", served.page.clone()),
        _ => text(404, "text/plain; charset=utf-8", "not found\n".into()),
    }
}

fn text(
    status: u16,
    content_type: &str,
    body: String,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header =
        tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

/// VmRSS of this process in KiB, where /proc says it.
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
