//! A real Prometheus 2 (Debian `prometheus`) on 127.0.0.1, scraping given targets every second,
//! with no remote write or read configured and its storage in a temporary directory; and
//! `promtool check metrics`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::http::http_request;
use super::process::{
    free_port, server_dir, start_with_retries, write_file, PortClash, ServerProcess, Transport,
    LOOPBACK,
};
use super::tools::{require, run};

const CLASH_MARKERS: [&str; 1] = ["address already in use"];

/// A running Prometheus. Stopped and its directory removed on drop.
pub struct Prometheus {
    process: ServerProcess,
    port: u16,
}

impl Prometheus {
    /// Scrapes every target (`host:port`, path `/metrics`) once a second.
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        for target in targets {
            assert!(target.ip().is_loopback(), "scrape targets stay on loopback");
        }
        start_with_retries("Prometheus", || Prometheus::try_start(targets))
    }

    fn try_start(targets: &[SocketAddr]) -> Result<Prometheus, PortClash> {
        let program = require("prometheus");
        let dir = server_dir("prometheus");
        let port = free_port(Transport::Tcp);
        let mut conf = String::new();
        let _ = writeln!(
            conf,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s"
        );
        let _ = writeln!(conf, "scrape_configs:\n  - job_name: xmppdns\n    scrape_interval: 1s\n    scrape_timeout: 1s");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let _ = writeln!(
            conf,
            "    static_configs:\n      - targets: [{}]",
            list.join(", ")
        );
        let conf_path = dir.path().join("prometheus.yml");
        write_file(&conf_path, &conf);
        let config = format!("--config.file={}", conf_path.display());
        let storage = format!("--storage.tsdb.path={}", dir.path().join("data").display());
        let listen = format!("--web.listen-address=127.0.0.1:{port}");
        let args = [
            OsStr::new(&config),
            OsStr::new(&storage),
            OsStr::new(&listen),
            OsStr::new("--log.level=info"),
        ];
        let mut process = ServerProcess::spawn("prometheus", dir, &program, &args, vec![]);
        let addr = SocketAddr::from((LOOPBACK, port));
        process.wait_ready(&CLASH_MARKERS, &[], None, || {
            match http_request(addr, "GET", "/-/ready", &[], None) {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("/-/ready: HTTP {}", r.status)),
                Err(e) => Err(e),
            }
        })?;
        Ok(Prometheus { process, port })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// `GET /api/v1/query?query=QUERY`: the `data.result` vector.
    pub fn query(&self, query: &str) -> Result<Vec<serde_json::Value>, String> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let path = format!("/api/v1/query?query={encoded}");
        let response = http_request(self.addr(), "GET", &path, &[], None)?;
        if response.status != 200 {
            return Err(format!(
                "{path}: HTTP {}: {}",
                response.status, response.body
            ));
        }
        let doc = response.json();
        Ok(doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// `promtool check metrics` on an exposition: `Ok` or what it said.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    let promtool = require("promtool");
    let mut cmd = Command::new(promtool);
    cmd.args(["check", "metrics"]).stdin(Stdio::piped());
    let ran = run(&mut cmd, Some(exposition), Duration::from_secs(30))?;
    if ran.success() {
        Ok(())
    } else {
        Err(ran.output())
    }
}
