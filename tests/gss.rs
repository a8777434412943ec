//! GSS-TSIG (RFC 3645) against real servers on 127.0.0.1: an MIT KDC with BIND 9
//! (`tkey-gssapi-keytab`, `update-policy`), and Samba 4.17 AD DC (internal DNS), whose
//! replies to GSS-signed updates do not verify although the updates land. Every run of the
//! binary gets its own KRB5_CONFIG and KRB5CCNAME: nothing under /etc is used.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use support::kdc::{GssBind, Kdc};
use support::{dig, xmppdns, zone_text};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Where a run finds Kerberos: the realm's krb5.conf and a ticket cache.
struct Krb {
    krb5_conf: PathBuf,
    ccache: PathBuf,
}

impl Krb {
    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        xmppdns()
            .current_dir(dir)
            .env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5CCNAME", format!("FILE:{}", self.ccache.display()))
            .env("KRB5RCACHETYPE", "none")
            .args(args)
            .output()
            .expect("run xmppdns")
    }
}

/// A two-pool topology for `zone` (SIP domain = zone) with the rfc2136 provider at `server`
/// and `auth` settings merged into the provider.
fn write_topology(
    dir: &Path,
    zone: &str,
    server: SocketAddr,
    active: usize,
    auth: Value,
) -> PathBuf {
    let pools: Vec<Value> = (1..=2)
        .map(|p| {
            json!({"name": format!("EdgePool{p}"), "site": format!("Site{p}"),
                   "fqdn": format!("edgepool{p}.{zone}"), "ipv4": [format!("192.0.2.{p}")]})
        })
        .collect();
    let mut provider = json!({"kind": "rfc2136", "server": server.to_string(),
                              "timeout_ms": 3000, "attempts": 2});
    provider
        .as_object_mut()
        .unwrap()
        .extend(auth.as_object().unwrap().clone());
    let value = json!({
        "zones": [zone], "sip_domains": [zone],
        "active_pool": format!("EdgePool{active}"),
        "federation": {"name": format!("xmpp.{zone}")},
        "pools": pools, "provider": provider, "ttl": 300
    });
    let path = dir.join("topology.json");
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

fn changes(krb: &Krb, dir: &Path, topology: &Path) -> Vec<Value> {
    let out = krb.run(
        dir,
        &["plan", topology.to_str().unwrap(), "--format", "json"],
    );
    assert_exit(&out, 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["changes"].as_array().cloned().unwrap_or_default()
}

fn sorted(server: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let mut r = dig(server, name, rtype);
    r.sort();
    r
}

const ZONE: &str = "contoso.test";

#[test]
fn bind_with_kerberos_creates_updates_converges_and_says_why_when_it_cannot() {
    let kdc = Kdc::start(&["admin", "intruder"]);
    let zone = zone_text(ZONE, 1, "xmpp 600 IN A 198.51.100.9\nwww IN A 192.0.2.80");
    let bind = GssBind::start(&kdc, &[(ZONE, &zone)], &["admin@CONTOSO.TEST"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let krb = Krb {
        krb5_conf: kdc.krb5_conf.clone(),
        ccache: dir.path().join("ccache"),
    };
    let topology = write_topology(
        dir.path(),
        ZONE,
        bind.addr(),
        1,
        json!({"auth": "gss-tsig"}),
    );
    let t = topology.to_str().unwrap();

    // No ticket yet: say so, and how to get one.
    let out = krb.run(dir.path(), &["plan", t]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no Kerberos ticket") && stderr(&out).contains("kinit"),
        "{}",
        stderr(&out)
    );

    kdc.kinit("admin", &krb.ccache, None);
    let out = krb.run(dir.path(), &["apply", t, "--yes", "-v"]);
    assert_exit(&out, 0);
    eprintln!("{}", stderr(&out));
    // BIND's replies verify: nothing needed settling, and reads were GSS-signed.
    assert!(!stdout(&out).contains("re-reading"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("by GSS-signed query"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 TKEY round trip"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        sorted(bind.addr(), &format!("_xmpp-server._tcp.{ZONE}"), "SRV"),
        [
            format!("10 0 5269 edgepool1.{ZONE}."),
            format!("20 0 5269 edgepool2.{ZONE}.")
        ]
    );
    assert_eq!(
        dig(bind.addr(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.1"]
    );
    assert_eq!(
        dig(bind.addr(), &format!("www.{ZONE}"), "A"),
        ["192.0.2.80"]
    );
    assert!(changes(&krb, dir.path(), &topology).is_empty());
}

/// Rewrites the topology's provider settings (same zone, pools and server).
fn with_provider(topology: &Path, settings: Value) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(topology).unwrap()).unwrap();
    let provider = doc["provider"].as_object_mut().unwrap();
    provider.extend(settings.as_object().unwrap().clone());
    provider.retain(|_, v| !v.is_null());
    std::fs::write(topology, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// Sets the first pool's address: a change of the federation A record and nothing else.
fn with_first_pool_address(topology: &Path, address: &str) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(topology).unwrap()).unwrap();
    doc["pools"][0]["ipv4"] = json!([address]);
    std::fs::write(topology, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// The shared scenario: failover and failback with `--skip-probe`, then a saved plan gone
/// stale (someone else changed the A record) refused with exit 3 and nothing changed.
fn failover_failback_and_a_stale_plan(krb: &Krb, dir: &Path, topology: &Path, server: SocketAddr) {
    let t = topology.to_str().unwrap();
    let srv = format!("_xmpp-server._tcp.{ZONE}");
    let out = krb.run(
        dir,
        &["failover", t, "--to", "EdgePool2", "--yes", "--skip-probe"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        sorted(server, &srv, "SRV"),
        [
            format!("10 0 5269 edgepool2.{ZONE}."),
            format!("20 0 5269 edgepool1.{ZONE}.")
        ]
    );
    assert_eq!(dig(server, &format!("xmpp.{ZONE}"), "A"), ["192.0.2.2"]);
    let out = krb.run(dir, &["failback", t, "--yes", "--skip-probe"]);
    assert_exit(&out, 0);
    assert_eq!(
        sorted(server, &srv, "SRV"),
        [
            format!("10 0 5269 edgepool1.{ZONE}."),
            format!("20 0 5269 edgepool2.{ZONE}.")
        ]
    );
    assert_eq!(dig(server, &format!("xmpp.{ZONE}"), "A"), ["192.0.2.1"]);
    assert!(changes(krb, dir, topology).is_empty());

    // A plan saved now goes stale when someone else moves the record first.
    with_first_pool_address(topology, "192.0.2.77");
    let saved = dir.join("plan.json");
    let out = krb.run(dir, &["plan", t, "--out", saved.to_str().unwrap()]);
    assert_exit(&out, 0);
    with_first_pool_address(topology, "192.0.2.66");
    assert_exit(&krb.run(dir, &["apply", t, "--yes"]), 0);
    assert_eq!(dig(server, &format!("xmpp.{ZONE}"), "A"), ["192.0.2.66"]);
    let out = krb.run(dir, &["apply", saved.to_str().unwrap(), "--yes"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert_eq!(
        dig(server, &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.66"],
        "nothing changed"
    );
    with_first_pool_address(topology, "192.0.2.1");
    assert_exit(&krb.run(dir, &["apply", t, "--yes"]), 0);
}

#[test]
fn bind_failover_failback_and_stale_plans_under_gss_tsig() {
    let kdc = Kdc::start(&["admin"]);
    let zone = zone_text(ZONE, 1, "");
    let bind = GssBind::start(&kdc, &[(ZONE, &zone)], &["admin@CONTOSO.TEST"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let krb = Krb {
        krb5_conf: kdc.krb5_conf.clone(),
        ccache: dir.path().join("ccache"),
    };
    kdc.kinit("admin", &krb.ccache, None);
    let topology = write_topology(
        dir.path(),
        ZONE,
        bind.addr(),
        1,
        json!({"auth": "gss-tsig"}),
    );
    with_nameservers(&topology, bind.addr());
    assert_exit(
        &krb.run(dir.path(), &["apply", topology.to_str().unwrap(), "--yes"]),
        0,
    );
    failover_failback_and_a_stale_plan(&krb, dir.path(), &topology, bind.addr());
}

/// Names the server to poll after failover/failback (the zone's NS is not reachable here).
fn with_nameservers(topology: &Path, server: SocketAddr) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(topology).unwrap()).unwrap();
    doc["nameservers"] = json!([server.to_string()]);
    std::fs::write(topology, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn bind_refusals_in_kerberos_words_keytabs_and_explicitly_unsigned_updates() {
    let kdc = Kdc::start(&["admin", "intruder"]);
    let zone = zone_text(ZONE, 1, "");
    let open = zone_text("fabrikam.test", 1, "");
    let bind = GssBind::start(
        &kdc,
        &[(ZONE, &zone)],
        &["admin@CONTOSO.TEST", "robot@CONTOSO.TEST"],
        &[("fabrikam.test", &open)],
    );
    let dir = tempfile::tempdir().unwrap();
    let krb = Krb {
        krb5_conf: kdc.krb5_conf.clone(),
        ccache: dir.path().join("ccache"),
    };
    let topology = write_topology(
        dir.path(),
        ZONE,
        bind.addr(),
        1,
        json!({"auth": "gss-tsig"}),
    );
    let t = topology.to_str().unwrap();

    // A principal update-policy does not name: REFUSED, with what to check.
    kdc.kinit("intruder", &krb.ccache, None);
    let out = krb.run(dir.path(), &["apply", t, "--yes"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("REFUSED")
            && err.contains("intruder@CONTOSO.TEST")
            && err.contains("update-policy"),
        "{err}"
    );
    assert!(dig(bind.addr(), &format!("xmpp.{ZONE}"), "A").is_empty());

    // A server principal the KDC does not know: named.
    with_provider(
        &topology,
        json!({"server_principal": "DNS/nowhere.contoso.test"}),
    );
    let out = krb.run(dir.path(), &["plan", t]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("does not know the server principal DNS/nowhere.contoso.test"),
        "{err}"
    );

    // Unattended: a keytab and its principal, no ticket cache at all.
    let keytab = dir.path().join("robot.keytab");
    kdc.add_keytab_user("robot", &keytab);
    std::fs::remove_file(&krb.ccache).unwrap();
    with_provider(
        &topology,
        json!({"server_principal": null, "keytab": "robot.keytab", "principal": "robot@CONTOSO.TEST"}),
    );
    let out = krb.run(dir.path(), &["apply", t, "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(
        dig(bind.addr(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.1"]
    );
    assert!(
        !krb.ccache.exists(),
        "a keytab run leaves the user's cache alone"
    );
    // The algorithm name of Windows 2000-era servers, which BIND also takes.
    with_provider(&topology, json!({"gss_algorithm": "gss.microsoft.com"}));
    with_first_pool_address(&topology, "192.0.2.9");
    assert_exit(&krb.run(dir.path(), &["apply", t, "--yes"]), 0);
    assert_eq!(
        dig(bind.addr(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.9"]
    );

    // No key and no auth: refused, listing the three choices.
    let plain = tempfile::tempdir().unwrap();
    let unsigned = write_topology(plain.path(), "fabrikam.test", bind.addr(), 1, json!({}));
    let out = krb.run(plain.path(), &["plan", unsigned.to_str().unwrap()]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("key_file") && err.contains("gss-tsig") && err.contains("\"none\""),
        "{err}"
    );

    // `auth: none` on a zone that takes unsigned updates from 127.0.0.1: works, and warns on
    // every plan and apply.
    with_provider(&unsigned, json!({"auth": "none"}));
    let u = unsigned.to_str().unwrap();
    for args in [vec!["plan", u], vec!["apply", u, "--yes"]] {
        let out = krb.run(plain.path(), &args);
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("unsigned") && stderr(&out).contains("forge"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(dig(bind.addr(), "xmpp.fabrikam.test", "A"), ["192.0.2.1"]);
}

/// Samba AD DC, the Windows DNS stand-in: one test (one Samba at a time, provisioned once).
#[test]
fn samba_ad_dc_secure_updates_settled_by_reading_back() {
    let _one_samba = support::samba::SAMBA_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let samba = support::samba::Samba::start();
    samba.create_zone(ZONE);
    let dir = tempfile::tempdir().unwrap();
    let krb = Krb {
        krb5_conf: samba.krb5_conf.clone(),
        ccache: dir.path().join("ccache"),
    };
    samba.kinit(&krb.ccache);
    let topology = write_topology(
        dir.path(),
        ZONE,
        samba.dns(),
        1,
        json!({"auth": "gss-tsig"}),
    );
    with_nameservers(&topology, samba.dns());
    let t = topology.to_str().unwrap();

    // Samba applies the update and signs its reply unverifiably: settled by reading back.
    let started = std::time::Instant::now();
    let out = krb.run(dir.path(), &["apply", t, "--yes", "-v"]);
    assert_exit(&out, 0);
    eprintln!(
        "apply against Samba took {:?}\n{}",
        started.elapsed(),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("confirmed by re-reading"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("does not verify"), "{}", stdout(&out));
    let srv = format!("_xmpp-server._tcp.{ZONE}");
    assert_eq!(
        sorted(samba.dns(), &srv, "SRV"),
        [
            format!("10 0 5269 edgepool1.{ZONE}."),
            format!("20 0 5269 edgepool2.{ZONE}.")
        ]
    );
    assert_eq!(
        dig(samba.dns(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.1"]
    );
    assert!(
        changes(&krb, dir.path(), &topology).is_empty(),
        "re-plan is empty"
    );

    failover_failback_and_a_stale_plan(&krb, dir.path(), &topology, samba.dns());
    stale_prerequisites_are_honoured_by_samba(&krb, dir.path(), &topology, samba.dns());

    // A user who may not rewrite the administrator's records: Samba answers SERVFAIL
    // (unverifiably), the read-back confirms nothing changed, and the refusal is reported.
    samba.add_user("bob");
    let bob = Krb {
        krb5_conf: samba.krb5_conf.clone(),
        ccache: dir.path().join("bob.ccache"),
    };
    samba.kinit_as("bob", &bob.ccache);
    with_first_pool_address(&topology, "192.0.2.33");
    let out = bob.run(dir.path(), &["apply", t, "--yes"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("SERVFAIL") && err.contains("did not let principal bob@SAMBA.TEST"),
        "{err}"
    );
    assert_eq!(
        dig(samba.dns(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.1"]
    );
    with_first_pool_address(&topology, "192.0.2.1");

    let out = krb.run(
        dir.path(),
        &[
            "audit",
            t,
            "--nameserver",
            &samba.dns().to_string(),
            "--format",
            "json",
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 4)), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["sip_domains"], 1, "{doc:#}");
    assert!(
        doc.to_string().contains("edgepool1.contoso.test"),
        "{doc:#}"
    );
}

/// The server's own guard: a change whose `before` no longer holds goes to Samba, which
/// answers NXRRSET (unverifiably) and changes nothing; the provider reports it stale.
fn stale_prerequisites_are_honoured_by_samba(
    krb: &Krb,
    dir: &Path,
    topology: &Path,
    server: SocketAddr,
) {
    use xmppdns::provider::{self, Environment, ProviderError};
    let _kerberos = kerberos_in_this_process(krb);
    with_first_pool_address(topology, "192.0.2.55");
    let topo = xmppdns::topology::Topology::load(topology).unwrap();
    let mut samba = provider::open(&topo, &Environment::system()).unwrap();
    let plan = xmppdns::app::plan(&topo, samba.as_mut()).unwrap();
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    with_first_pool_address(topology, "192.0.2.44");
    assert_exit(
        &krb.run(dir, &["apply", topology.to_str().unwrap(), "--yes"]),
        0,
    );
    let zone = plan.changes[0].zone.clone();
    let err = samba.apply(&zone, &plan.changes).unwrap_err();
    assert!(matches!(err, ProviderError::Stale { .. }), "{err}");
    assert_eq!(
        dig(server, &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.44"],
        "nothing changed"
    );
    with_first_pool_address(topology, "192.0.2.1");
    assert_exit(
        &krb.run(dir, &["apply", topology.to_str().unwrap(), "--yes"]),
        0,
    );
}

/// In-process GSS-TSIG reads `KRB5_CONFIG`/`KRB5CCNAME` from this process's environment: the
/// tests that use it take turns (runs of the binary get their own settings and are unaffected).
fn kerberos_in_this_process(krb: &Krb) -> MutexGuard<'static, ()> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("KRB5_CONFIG", &krb.krb5_conf);
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", krb.ccache.display()));
    guard
}

#[test]
fn a_context_the_server_forgot_is_negotiated_again_once() {
    use xmppdns::provider::{self, Environment};
    let kdc = Kdc::start(&["admin"]);
    let zone = zone_text(ZONE, 1, "");
    let mut bind = GssBind::start(&kdc, &[(ZONE, &zone)], &["admin@CONTOSO.TEST"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let krb = Krb {
        krb5_conf: kdc.krb5_conf.clone(),
        ccache: dir.path().join("ccache"),
    };
    kdc.kinit("admin", &krb.ccache, None);
    let topology = write_topology(
        dir.path(),
        ZONE,
        bind.addr(),
        1,
        json!({"auth": "gss-tsig"}),
    );
    let _kerberos = kerberos_in_this_process(&krb);
    let topo = xmppdns::topology::Topology::load(&topology).unwrap();
    let mut server = provider::open(&topo, &Environment::system()).unwrap();
    // Planning negotiates the command's context (its reads are GSS-signed queries).
    let plan = xmppdns::app::plan(&topo, server.as_mut()).unwrap();
    assert_eq!(plan.changes.len(), 2, "{:?}", plan.changes);
    bind.restart();
    // The UPDATE signed with the forgotten context gets BADKEY; a new context, one resend.
    let zone = plan.changes[0].zone.clone();
    server.apply(&zone, &plan.changes).unwrap();
    assert_eq!(
        dig(bind.addr(), &format!("xmpp.{ZONE}"), "A"),
        ["192.0.2.1"]
    );
}
