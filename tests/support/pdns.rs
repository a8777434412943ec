//! PowerDNS Authoritative 4.7 (`pdns_server`, foreground) with the gsqlite3 backend and the HTTP
//! API; optionally RFC 2136 updates signed with a TSIG key (`dnsupdate=yes`).
//!
//! Beyond the shared docs' configuration: every cache is off (`cache-ttl=0`, `query-cache-ttl=0`,
//! `negquery-cache-ttl=0`, `zone-metadata-cache-ttl=0`, `zone-cache-refresh-interval=0`) so a
//! change made behind the tool's back is visible at once; one distributor/receiver thread.
//! `only-notify=` is empty: a NOTIFY goes only to a zone's ALSO-NOTIFY metadata (`also_notify`,
//! an address the test owns), never to the addresses of its NS names, which PowerDNS would
//! otherwise look up through the host's resolver and notify wherever they point.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::dns::{query, wait_for_serial};
use super::http::{http_request, HttpResponse};
use super::process::{
    free_port, ready_timeout, server_dir, start_with_retries, write_file, PortClash, ServerProcess,
    Transport, LOOPBACK,
};
use super::tools::{require, require_file, run_ok};
use super::tsig::TsigKey;

const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
/// DNS port taken: pdns_server exits. API port taken: it logs this and runs on without the API.
const CLASH_MARKERS: [&str; 3] = [
    "Unable to bind",
    "Listening on HTTP socket failed",
    "Address already in use",
];
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running pdns_server. Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct PowerDns {
    process: ServerProcess,
    dns_port: u16,
    api_port: u16,
    api_key: String,
    update_key: Option<TsigKey>,
}

impl PowerDns {
    /// A server with no zones, the API on its own port (random API key), no RFC 2136.
    pub fn start() -> PowerDns {
        start_with_retries("PowerDNS", || PowerDns::try_start(None))
    }

    /// Like `start`, plus `dnsupdate=yes` from 127.0.0.0/8 and `key` imported with pdnsutil;
    /// `create_zone` then restricts updates of each new zone to that key (TSIG-ALLOW-DNSUPDATE).
    pub fn start_with_dnsupdate(key: &TsigKey) -> PowerDns {
        start_with_retries("PowerDNS", || PowerDns::try_start(Some(key)))
    }

    fn try_start(update_key: Option<&TsigKey>) -> Result<PowerDns, PortClash> {
        let pdns_server = require("pdns_server");
        let schema = require_file(SCHEMA, "pdns-backend-sqlite3");
        let dir = server_dir("pdns");
        let d = dir.path().display().to_string();
        let database = dir.path().join("pdns.sqlite3");
        let schema_sql = std::fs::read_to_string(&schema)
            .unwrap_or_else(|e| panic!("read {}: {e}", schema.display()));
        run_ok(
            "sqlite3",
            &[database.clone().into_os_string()],
            Some(&schema_sql),
            SETUP_TIMEOUT,
        );

        let dns_port = free_port(Transport::TcpAndUdp);
        let api_port = free_port(Transport::Tcp);
        let api_key = random_hex();
        let mut conf = String::new();
        let _ = writeln!(conf, "launch=gsqlite3");
        let _ = writeln!(conf, "gsqlite3-database={}", database.display());
        let _ = writeln!(conf, "local-address=127.0.0.1");
        let _ = writeln!(conf, "local-port={dns_port}");
        let _ = writeln!(conf, "api=yes");
        let _ = writeln!(conf, "api-key={api_key}");
        let _ = writeln!(conf, "webserver-address=127.0.0.1");
        let _ = writeln!(conf, "webserver-port={api_port}");
        let _ = writeln!(conf, "webserver-allow-from=127.0.0.0/8");
        let _ = writeln!(conf, "security-poll-suffix=");
        // The communicator (which sends NOTIFYs) runs only on a primary; the zones stay Native,
        // so it notifies only when asked through the API.
        let _ = writeln!(conf, "primary=yes");
        let _ = writeln!(conf, "only-notify=");
        for setting in [
            "cache-ttl=0",
            "query-cache-ttl=0",
            "negquery-cache-ttl=0",
            "zone-metadata-cache-ttl=0",
            "zone-cache-refresh-interval=0",
            "distributor-threads=1",
            "receiver-threads=1",
        ] {
            let _ = writeln!(conf, "{setting}");
        }
        if update_key.is_some() {
            let _ = writeln!(conf, "dnsupdate=yes");
            let _ = writeln!(conf, "allow-dnsupdate-from=127.0.0.0/8");
        }
        write_file(&dir.path().join("pdns.conf"), &conf);
        let config_dir = OsString::from(format!("--config-dir={d}"));
        if let Some(key) = update_key {
            let args = [
                config_dir.clone(),
                "import-tsig-key".into(),
                key.name.clone().into(),
                key.algorithm.clone().into(),
                key.secret_base64.clone().into(),
            ];
            run_ok("pdnsutil", &args, None, SETUP_TIMEOUT);
        }

        let socket_dir = OsString::from(format!("--socket-dir={d}"));
        let args = [
            config_dir.as_os_str(),
            OsStr::new("--daemon=no"),
            OsStr::new("--guardian=no"),
            socket_dir.as_os_str(),
        ];
        let mut process = ServerProcess::spawn("pdns_server", dir, &pdns_server, &args, Vec::new());
        let server = PowerDnsProbe {
            dns: SocketAddr::from((LOOPBACK, dns_port)),
            api: SocketAddr::from((LOOPBACK, api_port)),
            api_key: &api_key,
        };
        process.wait_ready(&CLASH_MARKERS, &[], None, || server.probe())?;
        Ok(PowerDns {
            process,
            dns_port,
            api_port,
            api_key,
            update_key: update_key.cloned(),
        })
    }

    /// The DNS address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.dns_port))
    }

    pub fn dns_port(&self) -> u16 {
        self.dns_port
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn api_addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.api_port))
    }

    /// `http://127.0.0.1:PORT` (the API is under `/api/v1`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr())
    }

    /// The `X-API-Key` value.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The key RFC 2136 updates must be signed with (`start_with_dnsupdate`).
    pub fn update_key(&self) -> Option<&TsigKey> {
        self.update_key.as_ref()
    }

    /// The server's private directory: pdns.conf, pdns.sqlite3, pdns_server.out (log).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything pdns_server logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// One API call with the API key (`path` like `/api/v1/servers/localhost/zones`).
    /// Panics only when there is no HTTP response at all.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
        let body = body.map(Value::to_string);
        http_request(
            self.api_addr(),
            method,
            path,
            &[("X-API-Key", &self.api_key)],
            body.as_deref(),
        )
        .unwrap_or_else(|e| panic!("PowerDNS API: {e}\n{}", self.process.log_tail(40)))
    }

    /// Creates a Native zone with these nameservers (names made absolute) and the default SOA;
    /// returns the API's zone object once the DNS port serves its SOA serial.
    pub fn create_zone(&self, zone: &str, nameservers: &[&str]) -> Value {
        let nameservers: Vec<String> = nameservers.iter().map(|ns| absolute(ns)).collect();
        self.create_zone_with(&json!({
            "name": absolute(zone),
            "kind": "Native",
            "nameservers": nameservers,
        }))
    }

    /// POST /api/v1/servers/localhost/zones with `zone` (a Zone object: name, kind, nameservers,
    /// rrsets, ...); panics unless 201. Waits until the DNS port serves the new SOA serial; with
    /// `start_with_dnsupdate`, also allows updates of the zone signed with the key.
    pub fn create_zone_with(&self, zone: &Value) -> Value {
        let response = self.api("POST", "/api/v1/servers/localhost/zones", Some(zone));
        assert_eq!(
            response.status, 201,
            "PowerDNS did not create the zone {zone}: {}",
            response.body
        );
        let created = response.json();
        let name = created["name"].as_str().expect("zone name").to_owned();
        let serial = created["serial"]
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or_else(|| panic!("no serial in {created}"));
        wait_for_serial(self.addr(), &name, serial, ready_timeout());
        if let Some(key) = &self.update_key {
            self.allow_dnsupdate(&name, &key.name);
        }
        created
    }

    /// Sets the zone's ALSO-NOTIFY metadata to `target` (`ADDR:PORT`, through the API): with
    /// `only-notify=` empty, the one place PowerDNS sends the zone's NOTIFYs.
    pub fn also_notify(&self, zone: &str, target: SocketAddr) {
        let path = format!(
            "/api/v1/servers/localhost/zones/{}/metadata/ALSO-NOTIFY",
            absolute(zone)
        );
        let body = json!({ "kind": "ALSO-NOTIFY", "metadata": [target.to_string()] });
        let response = self.api("PUT", &path, Some(&body));
        assert_eq!(
            response.status, 200,
            "PowerDNS did not set ALSO-NOTIFY on {zone}: {}",
            response.body
        );
    }

    /// Sets the zone's TSIG-ALLOW-DNSUPDATE metadata to `key_name` (through the API). Without it
    /// PowerDNS accepts any update from allow-dnsupdate-from, signed or not.
    pub fn allow_dnsupdate(&self, zone: &str, key_name: &str) {
        let path = format!(
            "/api/v1/servers/localhost/zones/{}/metadata/TSIG-ALLOW-DNSUPDATE",
            absolute(zone)
        );
        let body = json!({ "kind": "TSIG-ALLOW-DNSUPDATE", "metadata": [key_name] });
        let response = self.api("PUT", &path, Some(&body));
        assert_eq!(
            response.status, 200,
            "PowerDNS did not set TSIG-ALLOW-DNSUPDATE on {zone}: {}",
            response.body
        );
    }
}

struct PowerDnsProbe<'a> {
    dns: SocketAddr,
    api: SocketAddr,
    api_key: &'a str,
}

impl PowerDnsProbe<'_> {
    /// The API answers 200 to our (random) key, so it is ours; and the DNS port replies (REFUSED
    /// for a zone it does not have is a reply).
    fn probe(&self) -> Result<(), String> {
        let response = http_request(
            self.api,
            "GET",
            "/api/v1/servers/localhost",
            &[("X-API-Key", self.api_key)],
            None,
        )?;
        if response.status != 200 {
            return Err(format!(
                "API answered {}: {}",
                response.status, response.body
            ));
        }
        query(self.dns, ".", "SOA").map(|_| ())
    }
}

/// `name` with a final dot.
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// 128 random bits in hex (std's per-instance random SipHash keys; no crate needed).
fn random_hex() -> String {
    (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect()
}
