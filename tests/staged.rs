//! The staged failover as Microsoft's procedure runs it, against a BIND primary NOTIFYing a
//! Knot secondary and Prosody as the new pool's Edge services: the services are stopped before
//! the DNS change and started before verify. Driven through `--stage` (no terminal) and through
//! a pseudo-terminal (the walkthrough); plus a verify that never sees the services, and a DNS
//! stage that half-succeeded.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{
    bind_with_knot_secondary, dig, free_port, nsupdate, zone_text, Bind, Knot, Prosody, Transport,
    TsigKey,
};
use xmppdns::error::exit;
use xmppdns::failover;
use xmppdns::provider::Environment;
use xmppdns::{app, Error};

/// EdgePool1's address: only DNS data, nothing is ever sent to it.
const OLD_ADDRESS: &str = "127.0.0.2";
/// EdgePool2's address: where Prosody (its Edge services) listens when started.
const NEW_ADDRESS: &str = "127.0.0.1";
const ZONES: [&str; 2] = ["contoso.com", "fabrikam.com"];

/// BIND + Knot serving the zones pre-provisioned with EdgePool1 active, a topology for them,
/// and the port EdgePool2's services listen on (nothing listens until a test starts Prosody).
/// EdgePool2's SIP TLS side (`sip_tls_port`, where the failover's certificate gate looks while
/// the XMPP service is stopped) runs all along, presenting the pool's one certificate.
struct Lab {
    dir: tempfile::TempDir,
    bind: Bind,
    knot: Knot,
    key: TsigKey,
    port: u16,
    _sip_tls: Prosody,
}

/// EdgePool2's Access Edge certificate: every SIP domain.
fn edge_certificate() -> support::certs::Leaf {
    support::certs::self_signed(&ZONES)
}

/// EdgePool2's XMPP service on `port`, presenting its Access Edge certificate.
fn start_pool2(port: u16) -> Prosody {
    Prosody::start_on_with_certificate("contoso.com", port, &edge_certificate())
}

impl Lab {
    fn new(port: u16) -> Lab {
        let sip_tls = Prosody::start_with_direct_tls(&["contoso.com"], &edge_certificate());
        let sip_tls_port = sip_tls.direct_tls_port().expect("a direct TLS port");
        let key = TsigKey::generate("xmppdns-staged", "hmac-sha256");
        let srv = format!(
            "_xmpp-server._tcp 3600 IN SRV 10 0 {port} edgepool1.contoso.com.\n\
             _xmpp-server._tcp 3600 IN SRV 20 0 {port} edgepool2.contoso.com."
        );
        let contoso = zone_text(
            "contoso.com",
            1,
            &format!("xmpp 300 IN A {OLD_ADDRESS}\n{srv}"),
        );
        let fabrikam = zone_text("fabrikam.com", 1, &srv);
        let (bind, knot) = bind_with_knot_secondary(
            &[("contoso.com", &contoso), ("fabrikam.com", &fabrikam)],
            &key,
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.conf"), key.bind_conf()).unwrap();
        let topology = json!({
            "zones": ZONES,
            "sip_domains": ZONES,
            "active_pool": "EdgePool1",
            "federation": {"name": "xmpp.contoso.com", "ttl": 300},
            "pools": [
                {"name": "EdgePool1", "site": "Site1", "fqdn": "edgepool1.contoso.com",
                 "ipv4": [OLD_ADDRESS], "servers": ["edge1a.contoso.com"]},
                {"name": "EdgePool2", "site": "Site 2", "fqdn": "edgepool2.contoso.com",
                 "ipv4": [NEW_ADDRESS], "servers": ["edge2a.contoso.com", "edge2b.contoso.com"],
                 "sip_tls_port": sip_tls_port}
            ],
            "srv": {"port": port},
            "nameservers": [bind.addr().to_string(), knot.addr().to_string()],
            "provider": {"kind": "rfc2136", "server": bind.addr().to_string(),
                         "key_file": "key.conf", "timeout_ms": 2000, "attempts": 2},
        });
        std::fs::write(
            dir.path().join("topology.json"),
            serde_json::to_string_pretty(&topology).unwrap(),
        )
        .unwrap();
        Lab {
            dir,
            bind,
            knot,
            key,
            port,
            _sip_tls: sip_tls,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("topology.json")
    }

    /// Runs the CLI in the lab's folder (the topology is `topology.json` there), and prints
    /// the transcript (shown with `--nocapture`; the README's is one).
    fn run(&self, args: &[&str]) -> Output {
        let out = support::xmppdns()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the xmppdns binary runs");
        println!("$ xmppdns {}", args.join(" "));
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        println!("[exit {}]", out.status.code().unwrap_or(-1));
        out
    }

    fn active_pool(&self) -> String {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(self.path()).unwrap()).unwrap();
        value["active_pool"].as_str().unwrap().to_string()
    }

    fn federation(&self, server: SocketAddr) -> Vec<String> {
        dig(server, "xmpp.contoso.com", "A")
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: u8) {
    assert_eq!(out.status.code(), Some(i32::from(code)), "{}", text(out));
}

/// Each needle appears in `haystack`, in this order.
#[track_caller]
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match haystack[at..].find(needle) {
            Some(found) => at += found + needle.len(),
            None => panic!("`{needle}` not found after byte {at} in:\n{haystack}"),
        }
    }
}

#[test]
fn staged_failover_then_failback_with_the_services_stopped_before_dns_and_started_before_verify() {
    // The new pool's services run, then are stopped as the procedure's step 1 says.
    let prosody = Prosody::start("contoso.com");
    let lab = Lab::new(prosody.port());
    drop(prosody);

    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "lync",
    ]);
    assert_exit(&out, exit::OK);
    assert_in_order(
        &stdout_of(&out),
        &[
            "XMPP federation failover: EdgePool1 (site Site1) -> EdgePool2 (site Site 2)",
            "Stage lync: your steps (nothing was changed):",
            "1. [you] Stop the Lync services",
            "Stop-CsWindowsService -ComputerName 'edge2a.contoso.com'",
            "2. [you] Route XMPP federation through site Site 2",
            "Set-CsSite -Identity 'Site 2' -XmppExternalFederationRoute 'edge2a.contoso.com'",
            "Get-CsManagementStoreReplicationStatus",
            "Next: once they are done, xmppdns failover topology.json --to EdgePool2 --stage dns",
        ],
    );
    assert_eq!(lab.federation(lab.bind.addr()), [OLD_ADDRESS]);

    // Verify before the DNS stage has nothing to verify.
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
    ]);
    assert_exit(&out, exit::ERROR);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run the DNS stage first"),
        "{}",
        text(&out)
    );

    // The DNS stage goes on although nothing answers on port 5269: no XMPP gate.
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "dns",
        "--yes",
        "--runbook",
        "failover.ps1",
    ]);
    assert_exit(&out, exit::OK);
    assert_in_order(
        &stdout_of(&out),
        &[
            "Read back: DNS matches the plan.",
            "active_pool \"EdgePool1\" -> \"EdgePool2\"",
            "Next, your steps:",
            "4. [you] Make sure port",
            "5. [you] Start the Lync services on every Edge server of pool EdgePool2",
            "Start-CsWindowsService -ComputerName 'edge2b.contoso.com'",
            "Then: xmppdns failover topology.json --to EdgePool2 --stage verify",
        ],
    );
    assert_eq!(lab.federation(lab.bind.addr()), [NEW_ADDRESS]);
    assert_eq!(lab.active_pool(), "EdgePool2");
    let script = std::fs::read_to_string(lab.dir.path().join("failover.ps1")).unwrap();
    assert!(script.contains("$site = 'Site 2'"), "{script}");

    // The admin starts the services; verify waits for them and for every server.
    let _prosody = start_pool2(lab.port);
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
        "--verify-timeout",
        "30",
    ]);
    assert_exit(&out, exit::OK);
    assert_in_order(
        &stdout_of(&out),
        &[
            "XMPP federation failover: verify pool EdgePool2 (site Site 2)",
            "XMPP answered, as contoso.com, STARTTLS offered",
            "Every authoritative server serves the change (4 zone/server pairs checked",
            "Verified.",
            "6. [xmppdns] Verify",
            "done: verified by xmppdns",
        ],
    );

    // Failback in the same stages. EdgePool1 (127.0.0.2) has no server in this lab, so its
    // certificate is not checked and its verify checks DNS only (--skip-probe).
    let out = lab.run(&[
        "failback",
        "topology.json",
        "--stage",
        "lync",
        "--skip-probe",
    ]);
    assert_exit(&out, exit::OK);
    assert!(
        stdout_of(&out).contains("Stop-CsWindowsService -ComputerName 'edge1a.contoso.com'"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["failback", "topology.json", "--stage", "dns", "--yes"]);
    assert_exit(&out, exit::OK);
    let out = lab.run(&[
        "failback",
        "topology.json",
        "--stage",
        "verify",
        "--skip-probe",
    ]);
    assert_exit(&out, exit::OK);
    assert_in_order(
        &stdout_of(&out),
        &[
            "probe: skipped (--skip-probe): XMPP is not verified.",
            "Verified (DNS only: --skip-probe).",
        ],
    );
    assert_eq!(lab.federation(lab.knot.addr()), [OLD_ADDRESS]);
    assert_eq!(lab.active_pool(), "EdgePool1");

    // A second failback: already there, nothing to do, no runbook.
    let out = lab.run(&["failback", "topology.json"]);
    assert_exit(&out, exit::OK);
    assert_eq!(
        stdout_of(&out),
        "EdgePool1 is already active; nothing to do.\n"
    );
}

/// Once the services run, verify looks at the certificate again on the XMPP port itself: one
/// that misses a SIP domain there fails verify (exit 5) although XMPP answers and DNS is right.
#[test]
fn verify_checks_the_certificate_again_once_the_services_run() {
    let lab = Lab::new(free_port(Transport::Tcp));
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "dns",
        "--yes",
    ]);
    assert_exit(&out, exit::OK);
    let only_contoso = support::certs::self_signed(&["contoso.com"]);
    let _prosody = Prosody::start_on_with_certificate("contoso.com", lab.port, &only_contoso);
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
    ]);
    assert_exit(&out, exit::NOT_PROPAGATED);
    assert_in_order(
        &stdout_of(&out),
        &[
            "Every authoritative server serves the change",
            "Certificate of EdgePool2:",
            "NOT verified: DNS is left changed",
            "it does not cover fabrikam.com",
        ],
    );
}

#[test]
fn verify_with_the_services_never_started_exits_5_leaves_dns_changed_and_says_what_to_check() {
    let lab = Lab::new(free_port(Transport::Tcp));
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--yes",
        "--verify-timeout",
        "1",
    ]);
    assert_exit(&out, exit::NOT_PROPAGATED);
    let port = lab.port;
    assert_in_order(
        &stdout_of(&out),
        &[
            "Stage 1 of 4, your steps:",
            "Stage 2 of 4, DNS (xmppdns):",
            "Stage 3 of 4, your steps:",
            "Stage 4 of 4, verify (xmppdns):",
            "connection refused",
            "Every authoritative server serves the change",
            "NOT verified: DNS is left changed",
            "Runbook:",
            "6. [xmppdns] Verify",
            "FAILED (DNS is left changed):",
            &format!("127.0.0.1:{port} does not answer XMPP: connection refused"),
            "Get-CsWindowsService",
            "Then check again: xmppdns failover topology.json --to EdgePool2 --stage verify",
        ],
    );
    for server in [lab.bind.addr(), lab.knot.addr()] {
        assert_eq!(
            lab.federation(server),
            [NEW_ADDRESS],
            "DNS left changed at {server}"
        );
    }
    assert_eq!(lab.active_pool(), "EdgePool2");

    // The verify stage alone says the same.
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
        "--verify-timeout",
        "1",
    ]);
    assert_exit(&out, exit::NOT_PROPAGATED);
    assert!(
        stdout_of(&out).contains("FAILED (DNS is left changed)"),
        "{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// On a terminal: the walkthrough.

/// `xmppdns ARGS` under a pseudo-terminal (`script` from util-linux): what it shows, collected
/// as it comes, and its input.
struct Terminal {
    child: std::process::Child,
    shown: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    fn start(dir: &Path, args: &[&str]) -> Terminal {
        let command = std::iter::once(env!("CARGO_BIN_EXE_xmppdns"))
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        let mut stdout = child.stdout.take().unwrap();
        let shown = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&shown);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            shown,
            reader: Some(reader),
        }
    }

    /// Waits (bounded) until the terminal shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.shown.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "`{text}` never shown:\n{}",
                self.shown.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the end; returns the exit code and everything shown.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let shown = self.shown.lock().unwrap().clone();
        (status.code(), shown)
    }
}

#[test]
fn on_a_terminal_the_command_walks_the_admin_through_each_stage() {
    let prosody = Prosody::start("contoso.com");
    let lab = Lab::new(prosody.port());
    drop(prosody);
    let mut terminal = Terminal::start(
        lab.dir.path(),
        &[
            "failover",
            "topology.json",
            "--to",
            "EdgePool2",
            "--verify-timeout",
            "30",
        ],
    );
    terminal.wait_for("Press Enter once they are done to change DNS, or q to stop here");
    assert_eq!(
        lab.federation(lab.bind.addr()),
        [OLD_ADDRESS],
        "DNS waits for the admin"
    );
    terminal.type_line("");
    terminal.wait_for("Apply these changes? [y/N]");
    terminal.type_line("y");
    terminal.wait_for("Press Enter once the services are started to verify, or q to stop here");
    assert_eq!(lab.federation(lab.bind.addr()), [NEW_ADDRESS]);
    let _prosody = start_pool2(lab.port);
    terminal.type_line("");
    let (code, shown) = terminal.finish();
    assert_eq!(code, Some(0), "{shown}");
    assert_in_order(
        &shown,
        &[
            "Stage 1 of 4, your steps:",
            "Stop-CsWindowsService -ComputerName 'edge2a.contoso.com'",
            "Stage 2 of 4, DNS (xmppdns):",
            "Read back: DNS matches the plan.",
            "Stage 3 of 4, your steps:",
            "Start-CsWindowsService -ComputerName 'edge2a.contoso.com'",
            "Stage 4 of 4, verify (xmppdns):",
            "XMPP answered",
            "Verified.",
            "Runbook:",
            "done by xmppdns",
            "done: verified by xmppdns",
        ],
    );
    assert_eq!(lab.active_pool(), "EdgePool2");
}

#[test]
fn on_a_terminal_q_stops_before_dns_and_says_how_to_go_on() {
    let lab = Lab::new(free_port(Transport::Tcp));
    let mut terminal = Terminal::start(
        lab.dir.path(),
        &["failover", "topology.json", "--to", "EdgePool2"],
    );
    terminal.wait_for("or q to stop here");
    terminal.type_line("q");
    let (code, shown) = terminal.finish();
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown
            .contains("go on later with xmppdns failover topology.json --to EdgePool2 --stage dns"),
        "{shown}"
    );
    assert_eq!(lab.federation(lab.bind.addr()), [OLD_ADDRESS]);
    assert_eq!(lab.active_pool(), "EdgePool1");
}

// ---------------------------------------------------------------------------------------------
// A DNS stage that half-succeeded is not forgotten.

#[test]
fn a_half_done_dns_stage_is_pending_plan_and_apply_do_not_revert_it_and_the_move_completes_it() {
    let lab = Lab::new(free_port(Transport::Tcp));
    let env = Environment::system_without_proxy();
    let options = failover::Options {
        to: Some("EdgePool2".into()),
        promote: true,
        probe_before: failover::ProbeBefore::Skip,
        force: false,
        probe_timeout: Duration::from_secs(1),
        journal: None,
    };
    let prepared = failover::prepare(&lab.path(), &options, &env, "failover").unwrap();
    // Another writer changes the A record between the read and the update: fabrikam.com's
    // SRV records move, contoso.com is refused.
    let other = "zone contoso.com\nupdate delete xmpp.contoso.com. A\nupdate add xmpp.contoso.com. 300 IN A 127.0.0.9";
    nsupdate(lab.bind.addr(), &lab.key, other);
    let error = app::execute(prepared.apply).err().expect("refused");
    assert!(matches!(error, Error::PartlyApplied { .. }), "{error:?}");
    assert_eq!(lab.active_pool(), "EdgePool1");

    let out = lab.run(&["plan", "topology.json"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a failover EdgePool1 -> EdgePool2 is pending"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["apply", "topology.json", "--yes"]);
    assert_exit(&out, exit::REFUSED);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would revert it"),
        "{}",
        text(&out)
    );
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "verify",
    ]);
    assert_exit(&out, exit::ERROR);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a move to EdgePool2 is pending"),
        "{}",
        text(&out)
    );

    // Put the A record back as it was; running the DNS stage again completes the move.
    let restore = "zone contoso.com\nupdate delete xmpp.contoso.com. A\nupdate add xmpp.contoso.com. 300 IN A 127.0.0.2";
    nsupdate(lab.bind.addr(), &lab.key, restore);
    let out = lab.run(&[
        "failover",
        "topology.json",
        "--to",
        "EdgePool2",
        "--stage",
        "dns",
        "--yes",
    ]);
    assert_exit(&out, exit::OK);
    assert_eq!(lab.active_pool(), "EdgePool2");
    assert_eq!(lab.federation(lab.bind.addr()), [NEW_ADDRESS]);
    let out = lab.run(&["plan", "topology.json", "--detailed-exitcode"]);
    assert_exit(&out, exit::OK);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("pending"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_dry_run_shows_the_plan_stages_and_runbook_whatever_the_probe_says() {
    let lab = Lab::new(free_port(Transport::Tcp));
    for extra in [&[][..], &["--require-live"][..]] {
        let mut args = vec![
            "failover",
            "topology.json",
            "--to",
            "EdgePool2",
            "--dry-run",
        ];
        args.extend(extra);
        let out = lab.run(&args);
        assert_exit(&out, exit::OK);
        let stdout = stdout_of(&out);
        assert_in_order(
            &stdout,
            &[
                "connection refused",
                "Plan: 0 to create, 3 to update, 0 to delete.",
                "Dry run: nothing was changed.",
                "Runbook:",
                "1. [you] Stop the Lync services",
                "3. [xmppdns] DNS",
                "to do (dry run: nothing was changed)",
                "6. [xmppdns] Verify",
            ],
        );
        assert_eq!(
            stdout.contains("With --require-live the DNS stage would refuse"),
            !extra.is_empty(),
            "{stdout}"
        );
    }
    assert_eq!(lab.federation(lab.bind.addr()), [OLD_ADDRESS]);
    assert_eq!(lab.active_pool(), "EdgePool1");
}
