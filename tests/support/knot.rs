//! Knot DNS 3.2 (`knotd`, foreground) as a primary (signed updates + transfers) or as a
//! secondary that takes NOTIFY from its primary and follows it by IXFR.
//!
//! Knot 3.2's configuration parser rejects YAML flow style for sections (`server: { ... }` gives
//! "value not supported"), so the configuration is written in block style.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::bind::serving;
use super::dns::{soa_serial_in_zone_text, try_soa_serial};
use super::process::{
    free_port, make_dir, server_dir, start_with_retries, write_file, PortClash, ServerProcess,
    Transport, LOOPBACK,
};
use super::tools::require;
use super::tsig::TsigKey;

/// Logged when knotd cannot bind its port (it then exits).
const CLASH_MARKERS: [&str; 2] = ["cannot bind address", "address already in use"];
/// Logged when configuration or a zone file is bad.
const FATAL_MARKERS: [&str; 3] = [
    "failed to load configuration",
    "failed to load zone",
    "failed to parse zone file",
];
const STARTED_MARKER: &str = "server started in the foreground";

/// A running knotd. Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct Knot {
    process: ServerProcess,
    port: u16,
    zones: Vec<String>,
}

impl Knot {
    /// A primary for `zones` (name, zone-file text): updates and transfers allowed with `key`
    /// (`zonefile-load: difference-no-serial`, `journal-content: all`, `zonefile-sync: -1`).
    pub fn primary(zones: &[(&str, &str)], key: &TsigKey) -> Knot {
        start_with_retries("Knot primary", || Knot::try_primary(zones, key, None))
    }

    /// Like `primary`, and NOTIFYs `secondary` (signed with `key`) after changes. Knot 3.2
    /// sends that NOTIFY about 1 s after an update (not tunable).
    pub fn primary_notifying(zones: &[(&str, &str)], key: &TsigKey, secondary: SocketAddr) -> Knot {
        start_with_retries("Knot primary", || {
            Knot::try_primary(zones, key, Some(secondary))
        })
    }

    /// A secondary of `zones` from `primary` (transfers signed with `key`; NOTIFY from 127.0.0.1
    /// signed with `key` accepted; IXFR), returned once it serves the primary's current serials.
    /// The primary only NOTIFYs it if configured with this port: see `bind_with_knot_secondary`
    /// and `knot_with_knot_secondary`; otherwise it follows at the SOA refresh interval.
    pub fn secondary_of(primary: SocketAddr, zones: &[&str], key: &TsigKey) -> Knot {
        start_with_retries("Knot secondary", || {
            let port = free_port(Transport::TcpAndUdp);
            Knot::try_secondary_on(port, primary, zones, key)
        })
    }

    fn try_primary(
        zones: &[(&str, &str)],
        key: &TsigKey,
        notify: Option<SocketAddr>,
    ) -> Result<Knot, PortClash> {
        assert!(!zones.is_empty(), "a Knot primary needs at least one zone");
        let dir = server_dir("knot");
        let port = free_port(Transport::TcpAndUdp);
        let d = dir.path().display().to_string();
        let mut conf = common_conf(dir.path(), port, key);
        if let Some(secondary) = notify {
            let _ = writeln!(conf, "remote:");
            let _ = writeln!(conf, "  - id: secondary");
            let _ = writeln!(conf, "    address: {}@{}", secondary.ip(), secondary.port());
            let _ = writeln!(conf, "    key: \"{}\"", key.name);
        }
        let _ = writeln!(conf, "acl:");
        let _ = writeln!(conf, "  - id: update_and_transfer");
        let _ = writeln!(conf, "    key: \"{}\"", key.name);
        let _ = writeln!(conf, "    action: [update, transfer]");
        let _ = writeln!(conf, "zone:");
        for (zone, text) in zones {
            write_file(&dir.path().join(zone_file(zone)), text);
            let _ = writeln!(conf, "  - domain: \"{zone}\"");
            let _ = writeln!(conf, "    file: \"{d}/{}\"", zone_file(zone));
            let _ = writeln!(conf, "    acl: update_and_transfer");
            let _ = writeln!(conf, "    zonefile-load: difference-no-serial");
            let _ = writeln!(conf, "    journal-content: all");
            let _ = writeln!(conf, "    zonefile-sync: -1");
            if notify.is_some() {
                let _ = writeln!(conf, "    notify: secondary");
            }
        }
        let expected: Vec<(&str, Option<u32>)> = zones
            .iter()
            .map(|(zone, text)| (*zone, soa_serial_in_zone_text(text)))
            .collect();
        let names = zones.iter().map(|(zone, _)| zone.to_string()).collect();
        Knot::launch(dir, port, &conf, names, &expected)
    }

    /// A secondary on a port chosen by the caller (who may have told the primary to NOTIFY it).
    pub(crate) fn try_secondary_on(
        port: u16,
        primary: SocketAddr,
        zones: &[&str],
        key: &TsigKey,
    ) -> Result<Knot, PortClash> {
        assert!(
            !zones.is_empty(),
            "a Knot secondary needs at least one zone"
        );
        let primary_serials: Vec<(&str, Option<u32>)> = zones
            .iter()
            .map(|zone| match try_soa_serial(primary, zone) {
                Ok(serial) => (*zone, Some(serial)),
                Err(e) => panic!("the primary of the Knot secondary does not serve {zone}: {e}"),
            })
            .collect();
        let dir = server_dir("knot");
        let d = dir.path().display().to_string();
        let mut conf = common_conf(dir.path(), port, key);
        let _ = writeln!(conf, "remote:");
        let _ = writeln!(conf, "  - id: primary");
        let _ = writeln!(conf, "    address: {}@{}", primary.ip(), primary.port());
        let _ = writeln!(conf, "    key: \"{}\"", key.name);
        let _ = writeln!(conf, "acl:");
        let _ = writeln!(conf, "  - id: notify_from_primary");
        let _ = writeln!(conf, "    address: {}", primary.ip());
        let _ = writeln!(conf, "    key: \"{}\"", key.name);
        let _ = writeln!(conf, "    action: notify");
        let _ = writeln!(conf, "zone:");
        for zone in zones {
            let _ = writeln!(conf, "  - domain: \"{zone}\"");
            let _ = writeln!(conf, "    storage: \"{d}\"");
            // Knot 3.2 spells it `master:` (`primary:` came later).
            let _ = writeln!(conf, "    master: primary");
            let _ = writeln!(conf, "    acl: notify_from_primary");
            let _ = writeln!(conf, "    zonefile-sync: -1");
            let _ = writeln!(conf, "    zonefile-load: none");
            let _ = writeln!(conf, "    journal-content: changes");
        }
        let names = zones.iter().map(|zone| zone.to_string()).collect();
        Knot::launch(dir, port, &conf, names, &primary_serials)
    }

    fn launch(
        dir: tempfile::TempDir,
        port: u16,
        conf: &str,
        zones: Vec<String>,
        expected: &[(&str, Option<u32>)],
    ) -> Result<Knot, PortClash> {
        let knotd = require("knotd");
        let conf_path = dir.path().join("knot.conf");
        write_file(&conf_path, conf);
        let log = dir.path().join("knot.log");
        let args = [OsStr::new("-c"), conf_path.as_os_str()];
        let mut process = ServerProcess::spawn("knotd", dir, &knotd, &args, vec![log]);
        let addr = SocketAddr::from((LOOPBACK, port));
        process.wait_ready(&CLASH_MARKERS, &FATAL_MARKERS, Some(STARTED_MARKER), || {
            serving(addr, expected)
        })?;
        Ok(Knot {
            process,
            port,
            zones,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// The server's private directory: knot.conf, zone files, db/ (journal, timers), knot.log.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything knotd logged so far (stderr, then knot.log).
    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// A Knot primary NOTIFYing a Knot secondary of all its zones (signed with `key`); both serving
/// the zones' initial serials. Knot 3.2 as a primary NOTIFYs about 1 s after an update.
pub fn knot_with_knot_secondary(zones: &[(&str, &str)], key: &TsigKey) -> (Knot, Knot) {
    start_with_retries("Knot primary + Knot secondary", || {
        let secondary_port = free_port(Transport::TcpAndUdp);
        let secondary = SocketAddr::from((LOOPBACK, secondary_port));
        let primary = Knot::primary_notifying(zones, key, secondary);
        let names: Vec<&str> = zones.iter().map(|(zone, _)| *zone).collect();
        let knot = Knot::try_secondary_on(secondary_port, primary.addr(), &names, key)?;
        Ok((primary, knot))
    })
}

fn zone_file(zone: &str) -> String {
    format!("{}.zone", zone.trim_end_matches('.'))
}

/// server, log, database (created first: without it IXFR falls back to AXFR) and key sections.
fn common_conf(dir: &Path, port: u16, key: &TsigKey) -> String {
    let d = dir.display();
    make_dir(&dir.join("db"));
    let mut conf = String::new();
    let _ = writeln!(conf, "server:");
    let _ = writeln!(conf, "    rundir: \"{d}\"");
    let _ = writeln!(conf, "    pidfile: \"{d}/knot.pid\"");
    let _ = writeln!(conf, "    listen: 127.0.0.1@{port}");
    let _ = writeln!(conf, "log:");
    let _ = writeln!(conf, "  - target: \"{d}/knot.log\"");
    let _ = writeln!(conf, "    any: info");
    let _ = writeln!(conf, "database:");
    let _ = writeln!(conf, "    storage: \"{d}/db\"");
    let _ = writeln!(conf, "key:");
    let _ = writeln!(conf, "  - id: \"{}\"", key.name);
    let _ = writeln!(conf, "    algorithm: {}", key.algorithm);
    let _ = writeln!(conf, "    secret: \"{}\"", key.secret_base64);
    conf
}
