//! BIND 9 (`named -g`) as a primary: RFC 2136 updates and transfers allowed by one TSIG key,
//! optionally NOTIFYing a secondary (explicit notify, IXFR), several zones per server, and
//! optionally with its statistics channel (JSON over HTTP on 127.0.0.1) to count what it saw.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::dns::{soa_serial_in_zone_text, try_axfr, try_soa_serial};
use super::http::http_request;
use super::knot::Knot;
use super::process::{
    free_port, server_dir, start_with_retries, write_file, PortClash, ServerProcess, Transport,
    LOOPBACK,
};
use super::tools::require;
use super::tsig::TsigKey;

/// Logged when named cannot bind its port (it then exits).
const CLASH_MARKERS: [&str; 3] = [
    "unable to listen on any configured interfaces",
    "interface ignored",
    "address in use",
];
/// Logged when a zone file is bad: no point waiting for it to answer.
const FATAL_MARKERS: [&str; 1] = ["not loaded due to errors"];
/// Logged once every zone is loaded, just before "running".
const STARTED_MARKER: &str = "all zones loaded";

/// A running BIND primary. Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct Bind {
    process: ServerProcess,
    port: u16,
    zones: Vec<String>,
    key: TsigKey,
    /// The statistics channel's port, when there is one.
    statistics_port: Option<u16>,
}

impl Bind {
    /// A primary for `zones` (name, zone-file text), updates and transfers allowed with `key`,
    /// `notify no`.
    pub fn primary(zones: &[(&str, &str)], key: &TsigKey) -> Bind {
        start_with_retries("BIND primary", || {
            Bind::try_start(zones, key, None, false, true)
        })
    }

    /// Like `primary`, with a statistics channel on another free port (see `statistics`).
    pub fn primary_with_statistics(zones: &[(&str, &str)], key: &TsigKey) -> Bind {
        start_with_retries("BIND primary", || {
            Bind::try_start(zones, key, None, true, true)
        })
    }

    /// Like `primary_with_statistics`, but every zone transfer is refused (`allow-transfer
    /// { none; }`): updates signed with `key` and queries still work.
    pub fn primary_refusing_transfers(zones: &[(&str, &str)], key: &TsigKey) -> Bind {
        start_with_retries("BIND primary", || {
            Bind::try_start(zones, key, None, true, false)
        })
    }

    /// Like `primary`, and NOTIFYs `secondary` (signed with `key`) after every change:
    /// `notify explicit`, `notify-delay 0`, `ixfr-from-differences yes`, `max-ixfr-ratio unlimited`.
    pub fn primary_notifying(zones: &[(&str, &str)], key: &TsigKey, secondary: SocketAddr) -> Bind {
        start_with_retries("BIND primary", || {
            Bind::try_start(zones, key, Some(secondary), false, true)
        })
    }

    fn try_start(
        zones: &[(&str, &str)],
        key: &TsigKey,
        notify: Option<SocketAddr>,
        statistics: bool,
        transfers: bool,
    ) -> Result<Bind, PortClash> {
        assert!(!zones.is_empty(), "a BIND primary needs at least one zone");
        let named = require("named");
        let dir = server_dir("bind");
        let port = free_port(Transport::TcpAndUdp);
        let statistics_port = statistics.then(|| free_port(Transport::Tcp));
        let conf = dir.path().join("named.conf");
        write_file(&dir.path().join("key.conf"), &key.bind_conf());
        for (zone, text) in zones {
            write_file(&dir.path().join(zone_file(zone)), text);
        }
        write_file(
            &conf,
            &named_conf(
                dir.path(),
                port,
                zones,
                key,
                notify,
                statistics_port,
                transfers,
            ),
        );

        let args = [OsStr::new("-g"), OsStr::new("-c"), conf.as_os_str()];
        let mut process = ServerProcess::spawn("named", dir, &named, &args, Vec::new());
        let addr = SocketAddr::from((LOOPBACK, port));
        let expected: Vec<(&str, Option<u32>)> = zones
            .iter()
            .map(|(zone, text)| (*zone, soa_serial_in_zone_text(text)))
            .collect();
        // Answering the SOA is not enough: for a moment after that BIND 9.18 can still answer
        // an AXFR with SERVFAIL (seen in 3 of 6 starts here), and most tests start with one.
        process.wait_ready(&CLASH_MARKERS, &FATAL_MARKERS, Some(STARTED_MARKER), || {
            serving(addr, &expected)?;
            if !transfers {
                return Ok(());
            }
            zones
                .iter()
                .try_for_each(|(zone, _)| try_axfr(addr, zone, key).map(drop))
        })?;
        Ok(Bind {
            process,
            port,
            zones: zones.iter().map(|(z, _)| z.to_string()).collect(),
            key: key.clone(),
            statistics_port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// The server's private directory: named.conf, key.conf, ZONE.db (+ .jnl), named.out (log).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    pub fn key(&self) -> &TsigKey {
        &self.key
    }

    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The `nsstats` counters of the statistics channel (`/json/v1/server`): `Requestv4`,
    /// `ReqTCP`, `QryUDP`, `QryTCP`, `TruncatedResp`, `UpdateDone`, ... A counter BIND has not
    /// counted yet is absent (read it as 0). Panics without a statistics channel.
    pub fn nsstats(&self) -> serde_json::Map<String, serde_json::Value> {
        let port = self
            .statistics_port
            .expect("started without a statistics channel: use Bind::primary_with_statistics");
        let addr = SocketAddr::from((LOOPBACK, port));
        let reply = http_request(addr, "GET", "/json/v1/server", &[], None)
            .unwrap_or_else(|e| panic!("BIND statistics channel: {e}"));
        assert_eq!(reply.status, 200, "BIND statistics channel: {}", reply.body);
        match reply.json().get("nsstats") {
            Some(serde_json::Value::Object(counters)) => counters.clone(),
            _ => serde_json::Map::new(),
        }
    }

    /// Everything named logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// A BIND primary NOTIFYing a Knot secondary of all its zones (signed with `key`); both serving
/// the zones' initial serials. Restarted on other ports if either port turns out to be taken.
pub fn bind_with_knot_secondary(zones: &[(&str, &str)], key: &TsigKey) -> (Bind, Knot) {
    start_with_retries("BIND primary + Knot secondary", || {
        let secondary_port = free_port(Transport::TcpAndUdp);
        let secondary = SocketAddr::from((LOOPBACK, secondary_port));
        let bind = Bind::primary_notifying(zones, key, secondary);
        let names: Vec<&str> = zones.iter().map(|(zone, _)| *zone).collect();
        let knot = Knot::try_secondary_on(secondary_port, bind.addr(), &names, key)?;
        Ok((bind, knot))
    })
}

/// Ok when `addr` answers every zone's SOA with the expected serial (any serial if unknown).
pub(crate) fn serving(addr: SocketAddr, expected: &[(&str, Option<u32>)]) -> Result<(), String> {
    for (zone, serial) in expected {
        let got = try_soa_serial(addr, zone)?;
        if serial.is_some_and(|s| s != got) {
            return Err(format!("{zone} serial {got}, expected {serial:?}"));
        }
    }
    Ok(())
}

fn zone_file(zone: &str) -> String {
    format!("{}.db", zone.trim_end_matches('.'))
}

fn named_conf(
    dir: &Path,
    port: u16,
    zones: &[(&str, &str)],
    key: &TsigKey,
    notify: Option<SocketAddr>,
    statistics_port: Option<u16>,
    transfers: bool,
) -> String {
    let d = dir.display();
    let k = &key.name;
    let mut conf = String::new();
    let _ = writeln!(conf, "include \"{d}/key.conf\";");
    let _ = writeln!(conf, "options {{");
    let _ = writeln!(
        conf,
        "  directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\";"
    );
    let _ = writeln!(
        conf,
        "  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};"
    );
    let _ = writeln!(conf, "  recursion no; dnssec-validation no;");
    match notify {
        Some(secondary) => {
            let _ = writeln!(
                conf,
                "  notify explicit; also-notify {{ {} port {} key \"{k}\"; }}; notify-delay 0;",
                secondary.ip(),
                secondary.port()
            );
            let _ = writeln!(
                conf,
                "  ixfr-from-differences yes; max-ixfr-ratio unlimited;"
            );
        }
        None => {
            let _ = writeln!(conf, "  notify no;");
        }
    }
    let _ = writeln!(conf, "}};");
    // No rndc channel: it would listen on the fixed port 953.
    let _ = writeln!(conf, "controls {{ }};");
    if let Some(port) = statistics_port {
        let _ = writeln!(
            conf,
            "statistics-channels {{ inet 127.0.0.1 port {port} allow {{ 127.0.0.1; }}; }};"
        );
    }
    let transfer = if transfers {
        format!("key \"{k}\";")
    } else {
        "none;".to_string()
    };
    for (zone, _) in zones {
        let _ = writeln!(
            conf,
            "zone \"{zone}\" {{ type primary; file \"{}\";\n  allow-update {{ key \"{k}\"; }}; allow-transfer {{ {transfer} }}; }};",
            zone_file(zone)
        );
    }
    conf
}
