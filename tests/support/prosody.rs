//! Prosody 0.12 as the XMPP server-to-server endpoint (the port-5269 probe's peer) on a high
//! port, with self-signed certificates from openssl; and a raw stream-header probe.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::process::{
    free_port, make_dir, server_dir, start_with_retries, write_file, PortClash, ServerProcess,
    Transport, LOOPBACK,
};
use super::tools::{require, run_ok};

/// Prosody logs this and runs on without the port when the port is taken.
const CLASH_MARKERS: [&str; 2] = [
    "Failed to open server port",
    "in use by another application",
];
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A running Prosody. Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct Prosody {
    process: ServerProcess,
    port: u16,
    /// The XEP-0368 direct TLS s2s port, when asked for.
    direct_tls_port: Option<u16>,
    domains: Vec<String>,
}

impl Prosody {
    /// Prosody serving `domain` over s2s (TLS required, dialback), returned once a stream
    /// header to `domain` gets `<stream:features>` with `<starttls>`.
    pub fn start(domain: &str) -> Prosody {
        Prosody::start_hosts(&[domain])
    }

    /// Like `start`, one VirtualHost (and certificate) per domain.
    pub fn start_hosts(domains: &[&str]) -> Prosody {
        assert!(!domains.is_empty(), "Prosody needs at least one domain");
        start_with_retries("Prosody", || Prosody::try_start(domains, None, None, false))
    }

    /// Like `start`, on a given port: the port of a Prosody stopped earlier (an Edge pool's
    /// services started again), or one reserved with `free_port`.
    pub fn start_on(domain: &str, port: u16) -> Prosody {
        start_with_retries("Prosody", || {
            Prosody::try_start(&[domain], Some(port), None, false)
        })
    }

    /// Like `start_hosts`, every host presenting this one certificate (as an Edge pool's
    /// single Access Edge certificate does for all its SIP domains).
    pub fn start_with_certificate(domains: &[&str], leaf: &super::certs::Leaf) -> Prosody {
        assert!(!domains.is_empty(), "Prosody needs at least one domain");
        start_with_retries("Prosody", || {
            Prosody::try_start(domains, None, Some(leaf), false)
        })
    }

    /// Like `start_on`, presenting this one certificate (an Access Edge certificate naming
    /// every SIP domain), on the port of a Prosody stopped earlier.
    pub fn start_on_with_certificate(
        domain: &str,
        port: u16,
        leaf: &super::certs::Leaf,
    ) -> Prosody {
        start_with_retries("Prosody", || {
            Prosody::try_start(&[domain], Some(port), Some(leaf), false)
        })
    }

    /// Like `start_with_certificate`, plus a direct TLS s2s port (XEP-0368) on
    /// `direct_tls_port()`.
    pub fn start_with_direct_tls(domains: &[&str], leaf: &super::certs::Leaf) -> Prosody {
        assert!(!domains.is_empty(), "Prosody needs at least one domain");
        start_with_retries("Prosody", || {
            Prosody::try_start(domains, None, Some(leaf), true)
        })
    }

    pub fn direct_tls_port(&self) -> Option<u16> {
        self.direct_tls_port
    }

    fn try_start(
        domains: &[&str],
        port: Option<u16>,
        leaf: Option<&super::certs::Leaf>,
        direct_tls: bool,
    ) -> Result<Prosody, PortClash> {
        let prosody = require("prosody");
        let dir = server_dir("prosody");
        let d = dir.path().display().to_string();
        let certs = dir.path().join("certs");
        make_dir(&certs);
        make_dir(&dir.path().join("data"));
        for domain in domains {
            match leaf {
                None => self_signed_certificate(&certs, domain),
                Some(leaf) => {
                    write_file(&certs.join(format!("{domain}.crt")), &leaf.cert_pem);
                    write_file(&certs.join(format!("{domain}.key")), &leaf.key_pem);
                }
            }
        }
        let port = port.unwrap_or_else(|| free_port(Transport::Tcp));
        let mut conf = String::new();
        let _ = writeln!(conf, "run_as_root = true");
        let _ = writeln!(conf, "daemonize = false");
        let _ = writeln!(conf, "pidfile = \"{d}/prosody.pid\"");
        let _ = writeln!(conf, "data_path = \"{d}/data\"");
        let _ = writeln!(conf, "interfaces = {{ \"127.0.0.1\" }}");
        let _ = writeln!(conf, "s2s_ports = {{ {port} }}");
        let direct_tls_port = direct_tls.then(|| free_port(Transport::Tcp));
        if let Some(direct) = direct_tls_port {
            let _ = writeln!(conf, "s2s_direct_tls_ports = {{ {direct} }}");
        }
        let _ = writeln!(conf, "c2s_ports = {{ }}");
        let _ = writeln!(conf, "certificates = \"{d}/certs\"");
        let _ = writeln!(conf, "modules_enabled = {{ \"tls\", \"dialback\" }}");
        let _ = writeln!(
            conf,
            "log = {{ {{ levels = {{ min = \"info\" }}, to = \"file\", filename = \"{d}/prosody.log\" }} }}"
        );
        for domain in domains {
            let _ = writeln!(conf, "VirtualHost \"{domain}\"");
        }
        let conf_path = dir.path().join("prosody.cfg.lua");
        write_file(&conf_path, &conf);

        let log = dir.path().join("prosody.log");
        // -F: foreground. Never run a bare `prosody`: it starts with the system config.
        let args = [
            OsStr::new("-F"),
            OsStr::new("--config"),
            conf_path.as_os_str(),
        ];
        let mut process = ServerProcess::spawn("prosody", dir, &prosody, &args, vec![log]);
        let addr = SocketAddr::from((LOOPBACK, port));
        let started = format!("Activated service 's2s' on [127.0.0.1]:{port}");
        let domain = domains[0];
        process.wait_ready(&CLASH_MARKERS, &[], Some(&started), || {
            let reply = xmpp_stream_features(addr, domain, PROBE_TIMEOUT)?;
            if reply.contains("</stream:features>") && reply.contains("<starttls") {
                Ok(())
            } else {
                Err(format!("no <stream:features> with <starttls>: {reply}"))
            }
        })?;
        Ok(Prosody {
            process,
            port,
            direct_tls_port,
            domains: domains.iter().map(|d| d.to_string()).collect(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// The first domain.
    pub fn domain(&self) -> &str {
        &self.domains[0]
    }

    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The server's private directory: prosody.cfg.lua, certs/, data/, prosody.log.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything Prosody logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// `certs/DOMAIN.crt` + `certs/DOMAIN.key`: self-signed RSA 2048, CN and SAN = domain.
fn self_signed_certificate(certs: &Path, domain: &str) {
    let key = certs.join(format!("{domain}.key"));
    let crt = certs.join(format!("{domain}.crt"));
    let args: Vec<OsString> = vec![
        "req".into(),
        "-x509".into(),
        "-newkey".into(),
        "rsa:2048".into(),
        "-nodes".into(),
        "-keyout".into(),
        key.into_os_string(),
        "-out".into(),
        crt.into_os_string(),
        "-days".into(),
        "7".into(),
        "-subj".into(),
        format!("/CN={domain}").into(),
        "-addext".into(),
        format!("subjectAltName=DNS:{domain}").into(),
    ];
    run_ok("openssl", &args, None, Duration::from_secs(60));
}

/// Opens a TCP connection, sends the s2s stream header `to` a domain and returns what the server
/// sent until `</stream:features>`, `</stream:stream>` or end of stream (within `timeout`).
/// `Err` on connect/IO failure or when the timeout passes first.
pub fn xmpp_stream_features(
    addr: SocketAddr,
    to: &str,
    timeout: Duration,
) -> Result<String, String> {
    assert!(addr.ip().is_loopback(), "test traffic stays on loopback");
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
    );
    stream
        .write_all(header.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if text.contains("</stream:features>") || text.contains("</stream:stream>") {
            let _ = stream.write_all(b"</stream:stream>");
            return Ok(text);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{addr}: no stream features within {timeout:?}; got: {text}"
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(text),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "{addr}: no stream features within {timeout:?}; got: {text}"
                ))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from {addr}: {e}; got: {text}")),
        }
    }
}

/// A TCP listener on 127.0.0.1 that is not XMPP: it reads what the first connection sends and
/// answers like a web server, then closes. The thread gives up after `PROBE_TIMEOUT` × 5 when
/// nothing connects, so joining it is bounded.
pub fn http_error_listener() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + PROBE_TIMEOUT * 5;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(PROBE_TIMEOUT));
                    let mut buf = [0u8; 512];
                    let _ = conn.read(&mut buf);
                    let _ =
                        conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => return,
            }
        }
    });
    (addr, handle)
}
