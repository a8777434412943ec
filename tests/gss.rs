//! GSS-TSIG (RFC 3645) against real servers on 127.0.0.1: an MIT KDC with BIND 9
//! (`tkey-gssapi-keytab`, `update-policy`), and Samba 4.17 AD DC (internal DNS), whose
//! replies to GSS-signed updates do not verify although the updates land. Every run of the
//! binary gets its own KRB5_CONFIG and KRB5CCNAME: nothing under /etc is used.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

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
fn write_topology(dir: &Path, zone: &str, server: SocketAddr, active: usize, auth: Value) -> PathBuf {
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
    let out = krb.run(dir, &["plan", topology.to_str().unwrap(), "--format", "json"]);
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
    let topology = write_topology(dir.path(), ZONE, bind.addr(), 1, json!({"auth": "gss-tsig"}));
    let t = topology.to_str().unwrap();

    // No ticket yet: say so, and how to get one.
    let out = krb.run(dir.path(), &["plan", t]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("no Kerberos ticket") && stderr(&out).contains("kinit"), "{}", stderr(&out));

    kdc.kinit("admin", &krb.ccache, None);
    let out = krb.run(dir.path(), &["apply", t, "--yes", "-v"]);
    assert_exit(&out, 0);
    eprintln!("{}", stderr(&out));
    assert_eq!(
        sorted(bind.addr(), &format!("_xmpp-server._tcp.{ZONE}"), "SRV"),
        [format!("10 0 5269 edgepool1.{ZONE}."), format!("20 0 5269 edgepool2.{ZONE}.")]
    );
    assert_eq!(dig(bind.addr(), &format!("xmpp.{ZONE}"), "A"), ["192.0.2.1"]);
    assert_eq!(dig(bind.addr(), &format!("www.{ZONE}"), "A"), ["192.0.2.80"]);
    assert!(changes(&krb, dir.path(), &topology).is_empty());
}
