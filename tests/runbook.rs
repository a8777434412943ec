//! The runbook an admin runs: the `.ps1` of a dry run compared with golden files
//! (`fixtures/golden/runbook/`, regenerate with `UPDATE_GOLDEN=1 cargo test --test runbook`),
//! placeholder pools never emitted as live commands, names with spaces and quotes quoted, and
//! what a peer sends on port 5269 never able to write a line of its own.
//!
//! No PowerShell parser check: `pwsh` is not installable here (no Debian 12 package; PyPI and
//! npm have no real PowerShell).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::LOOPBACK;
use xmppdns::error::exit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture topology (zonefile provider) and zone files in a temp dir, the topology changed
/// by `edit`, written as `contoso.json`.
fn fixture(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("fixtures");
    let mut topology: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("contoso.json")).unwrap())
            .unwrap();
    edit(&mut topology);
    std::fs::write(
        dir.path().join("contoso.json"),
        serde_json::to_string_pretty(&topology).unwrap(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    for zone in ["contoso.com", "fabrikam.com"] {
        let name = format!("{zone}.zone");
        std::fs::copy(
            fixtures.join("zones").join(&name),
            dir.path().join("zones").join(&name),
        )
        .unwrap();
    }
    dir
}

/// `failover contoso.json --to EdgePool2 --dry-run --runbook failover.ps1 EXTRA...` in `dir`:
/// the command's output and the script.
fn dry_run(dir: &Path, extra: &[&str]) -> (Output, String) {
    let out = support::xmppdns()
        .args([
            "failover",
            "contoso.json",
            "--to",
            "EdgePool2",
            "--dry-run",
            "--runbook",
            "failover.ps1",
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the xmppdns binary runs");
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::OK)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = std::fs::read_to_string(dir.join("failover.ps1")).unwrap();
    (out, script)
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = root().join("fixtures/golden/runbook").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test runbook",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

/// The script's lines that PowerShell runs (not comments).
fn live_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Commands that change the Lync deployment.
const CHANGING: [&str; 4] = [
    "Stop-CsWindowsService",
    "Start-CsWindowsService",
    "Set-CsSite",
    "$servicesStopped = $true",
];

#[test]
fn the_runbook_script_pauses_before_each_stage_detects_the_parameter_and_matches_its_golden() {
    let dir = fixture(|_| {});
    let (out, script) = dry_run(dir.path(), &["--skip-probe"]);
    golden("failover.ps1", &script);
    let live = live_lines(&script);
    let pauses = live.iter().filter(|l| l.starts_with("Read-Host ")).count();
    assert_eq!(pauses, 5, "{script}");
    for needle in [
        "(Get-Command Set-CsSite).Parameters.ContainsKey('XmppExternalFederationRoute')",
        "$route = @{ XmppFederationRoute = 'EdgeServer:' + $edgeServer }",
        "$current = Get-CsSite -Identity $site",
        "Get-CsManagementStoreReplicationStatus",
        "} finally {",
        "Write-Host '    Start-CsWindowsService -ComputerName ''edgeserver2.contoso.com'''",
    ] {
        assert!(
            live.iter().any(|l| l.contains(needle)),
            "`{needle}`:\n{script}"
        );
    }
    // The stages are also shown on the terminal, quoted the same way.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "Set-CsSite -Identity 'Site2' -XmppExternalFederationRoute 'edgeserver2.contoso.com'"
        ),
        "{stdout}"
    );
}

#[test]
fn a_placeholder_pool_never_becomes_a_live_command() {
    let dir = fixture(|t| t["pools"][1]["placeholder"] = json!(true));
    let (out, script) = dry_run(dir.path(), &["--skip-probe"]);
    golden("placeholder.ps1", &script);
    for line in live_lines(&script) {
        let changing = CHANGING.iter().any(|c| line.starts_with(c));
        let names = line.starts_with("$site =") || line.starts_with("$edgeServer =");
        assert!(
            !changing && !names,
            "live `{line}` built from a placeholder:\n{script}"
        );
    }
    assert!(
        script.contains(
            "    # FILL IN, then run: Stop-CsWindowsService -ComputerName 'edgeserver2.contoso.com'"
        ),
        "{script}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "# FILL IN, then run: Stop-CsWindowsService -ComputerName 'edgeserver2.contoso.com'"
        ) && stdout.contains("is marked \"placeholder\""),
        "{stdout}"
    );
    // Without the marker the same pool's commands are live.
    let dir = fixture(|t| t["pools"][1]["placeholder"] = json!(false));
    let (_, script) = dry_run(dir.path(), &["--skip-probe"]);
    assert!(live_lines(&script)
        .iter()
        .any(|l| l.starts_with("Stop-CsWindowsService -ComputerName 'edgeserver2.contoso.com'")));
}

#[test]
fn site_names_with_spaces_and_quotes_are_quoted_everywhere() {
    let site = "Site 2 (O'Hare) $(Stop-Computer)";
    let dir = fixture(|t| t["pools"][1]["site"] = json!(site));
    let (out, script) = dry_run(dir.path(), &["--skip-probe"]);
    golden("site-with-spaces.ps1", &script);
    let quoted = "'Site 2 (O''Hare) $(Stop-Computer)'";
    assert!(
        live_lines(&script).contains(&format!("$site = {quoted}").as_str()),
        "{script}"
    );
    // Double-quoted strings would expand $(...): the script has none with a name in them.
    assert!(
        !live_lines(&script)
            .iter()
            .any(|l| l.contains('"') && l.contains("Stop-Computer")),
        "{script}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Set-CsSite -Identity {quoted} -XmppExternalFederationRoute"
        )),
        "{stdout}"
    );
}

/// A peer on port 5269 that answers with a stream header whose `from` and stream error hold
/// line breaks, terminal escapes and a command.
fn hostile_xmpp_peer() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        let answer = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
            xmlns:stream='http://etherx.jabber.org/streams' version='1.0' \
            from='evil.example\r\nStop-Computer -Force\r\n# \u{1b}[2J\u{2028}Restart-Computer'>\
            <stream:error><bad\nRemove-Item/></stream:error></stream:stream>";
        let _ = stream.write_all(answer.as_bytes());
    });
    (port, handle)
}

#[test]
fn what_a_peer_sends_cannot_write_a_line_of_the_runbook_or_the_terminal() {
    let (port, peer) = hostile_xmpp_peer();
    let dir = fixture(|t| {
        t["srv"]["port"] = json!(port);
        t["pools"][1]["ipv4"] = json!(["127.0.0.1"]);
    });
    let (out, script) = dry_run(dir.path(), &[]);
    peer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("evil.exampleStop-Computer -Force# [2JRestart-Computer"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r') && !stdout.contains('\u{2028}'),
        "{stdout:?}"
    );
    assert!(
        script.contains("evil.exampleStop-Computer"),
        "the probe is noted:\n{script}"
    );
    for line in script.lines() {
        if line.contains("Stop-Computer") || line.contains("Restart-Computer") {
            assert!(
                line.trim_start().starts_with('#'),
                "a peer wrote `{line}`:\n{script}"
            );
        }
    }
    assert!(
        !script.contains('\r') && !script.contains('\u{1b}') && !script.contains('\u{2028}'),
        "{script:?}"
    );
}
