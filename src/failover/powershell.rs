//! The runbook as a PowerShell script an admin can run safely: it pauses before each stage,
//! checks before it changes (so it can be run again), finds out which route parameter the
//! installed `Set-CsSite` has, checks the route with `Get-CsSite`, waits for Central Management
//! Store replication, and if anything fails after the Edge services were stopped it prints how
//! to start them again.
//!
//! Every argument is a single-quoted PowerShell string; every comment is one line with control
//! characters stripped; a placeholder pool's commands are written commented out.

use std::fmt::Write as _;

use crate::failover::runbook::{self, DnsStep, Inputs};
use crate::probe::printable;

/// How long the script waits for Central Management Store replication.
const REPLICATION_MINUTES: u32 = 15;

/// `text` as a PowerShell single-quoted string: control characters stripped, and every
/// character PowerShell reads as a single quote (', ‘, ’, ‚, ‛) doubled.
pub fn quote(text: &str) -> String {
    let mut out = String::from("'");
    for c in printable(text).chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The script being written: lines inside the `try` are indented; commands built from a
/// placeholder pool are commented out.
struct Script {
    out: String,
    placeholder: bool,
}

impl Script {
    fn raw(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    /// A line of code inside the `try` block.
    fn code(&mut self, line: &str) {
        let _ = writeln!(self.out, "    {line}");
    }

    /// A line of code built from the new pool's names: commented out for a placeholder.
    fn live(&mut self, line: &str) {
        if self.placeholder {
            let _ = writeln!(self.out, "    {}{line}", runbook::FILL_IN);
        } else {
            self.code(line);
        }
    }

    fn comment(&mut self, text: &str) {
        let _ = writeln!(self.out, "    # {}", printable(text));
    }

    /// The pause before a stage: nothing of it runs until the admin says so.
    fn pause(&mut self, number: usize, title: &str) {
        let _ = writeln!(self.out);
        self.comment(&format!("Stage {number}: {title}"));
        let prompt =
            format!("Stage {number}: {title}. Press Enter to go on, or Ctrl+C to stop here");
        self.code(&format!("Read-Host {} | Out-Null", quote(&prompt)));
    }
}

/// The whole script; `heading` is its first comment.
pub fn script(inputs: &Inputs, heading: &str) -> String {
    let mut s = Script {
        out: String::new(),
        placeholder: inputs.to.placeholder,
    };
    s.raw(&format!("# {}", printable(heading)));
    s.raw("# Run it in the Lync Server Management Shell. It pauses before each stage, and each");
    s.raw("# stage checks before it changes, so running it again is safe.");
    if s.placeholder {
        s.raw(&format!(
            "# Pool {} is marked \"placeholder\" in the topology: its site and Edge server names are",
            printable(&inputs.to.name)
        ));
        s.raw("# guesses, so every command built from them is commented out. Fill them in in the");
        s.raw("# topology, remove the marker, and write the runbook again.");
    }
    s.raw("$ErrorActionPreference = 'Stop'");
    s.raw("$servicesStopped = $false");
    s.raw("$finished = $false");
    s.raw("try {");
    stop_stage(&mut s, inputs);
    route_stage(&mut s, inputs);
    dns_stage(&mut s, inputs);
    start_stage(&mut s, inputs);
    s.code("$finished = $true");
    let verify = format!("{} --stage verify", inputs.invocation);
    s.code(&format!(
        "Write-Host {}",
        quote(&format!("Done. Now let xmppdns verify the move: {verify}"))
    ));
    s.raw("} finally {");
    s.raw("    if ($servicesStopped -and -not $finished) {");
    s.raw(&format!(
        "        Write-Warning {}",
        quote(&format!(
            "The runbook stopped after the Edge services of pool {} were stopped. Start them again with:",
            inputs.to.name
        ))
    ));
    for command in runbook::service_commands("Start-CsWindowsService", inputs.to) {
        s.raw(&format!(
            "        Write-Host {}",
            quote(&format!("    {command}"))
        ));
    }
    s.raw("    }");
    s.raw("}");
    s.out
}

/// Stage 1 (the procedure's step 1): stop the new pool's Edge services.
fn stop_stage(s: &mut Script, inputs: &Inputs) {
    let to = inputs.to;
    s.pause(
        1,
        &format!(
            "stop the Lync services on every Edge server of pool {} (site {})",
            to.name, to.site
        ),
    );
    s.live("$servicesStopped = $true");
    for command in runbook::service_commands("Stop-CsWindowsService", to) {
        s.live(&command);
    }
}

/// Stage 2 (step 2): the route, with whichever parameter `Set-CsSite` has, checked with
/// `Get-CsSite`, then the wait for replication.
fn route_stage(s: &mut Script, inputs: &Inputs) {
    let to = inputs.to;
    s.pause(
        2,
        &format!("route XMPP federation through site {}", to.site),
    );
    s.live(&format!("$site = {}", quote(&to.site)));
    s.live(&format!(
        "$edgeServer = {}",
        quote(&runbook::route_server(to))
    ));
    for line in [
        "if ((Get-Command Set-CsSite).Parameters.ContainsKey('XmppExternalFederationRoute')) {",
        "    $route = @{ XmppExternalFederationRoute = $edgeServer }",
        "} else {",
        "    # Set-CsSite's reference documents -XmppFederationRoute with values 'EdgeServer:<fqdn>'.",
        "    $route = @{ XmppFederationRoute = 'EdgeServer:' + $edgeServer }",
        "}",
        "$current = Get-CsSite -Identity $site",
        "if (-not ('' + $current.XmppExternalFederationRoute + ' ' + $current.XmppFederationRoute).Contains($edgeServer)) {",
        "    Set-CsSite -Identity $site @route",
        "}",
        "$current = Get-CsSite -Identity $site",
        "if (-not ('' + $current.XmppExternalFederationRoute + ' ' + $current.XmppFederationRoute).Contains($edgeServer)) {",
        "    throw ('Get-CsSite does not show the XMPP federation route ' + $edgeServer + ' on site ' + $site + '.')",
        "}",
        "Write-Host ('Route set on site ' + $site + '; waiting for Central Management Store replication...')",
    ] {
        s.live(line);
    }
    s.live(&format!(
        "$deadline = (Get-Date).AddMinutes({REPLICATION_MINUTES})"
    ));
    for line in [
        "while (@(Get-CsManagementStoreReplicationStatus | Where-Object { -not $_.UpToDate }).Count -gt 0) {",
        "    if ((Get-Date) -gt $deadline) {",
    ] {
        s.live(line);
    }
    s.live(&format!(
        "        throw {}",
        quote(&format!("Central Management Store replication is not complete after {REPLICATION_MINUTES} minutes: check Get-CsManagementStoreReplicationStatus, and do not start the Edge services before every replica is up to date.")),
    ));
    for line in ["    }", "    Start-Sleep -Seconds 15", "}"] {
        s.live(line);
    }
}

/// Stage 3 (steps 3-4): DNS, done by xmppdns; the script only says where it stands.
fn dns_stage(s: &mut Script, inputs: &Inputs) {
    let when = match inputs.dns {
        DnsStep::Done => "xmppdns has changed DNS (see below); go on",
        _ => "let xmppdns change DNS now, and go on once it reports success",
    };
    s.pause(3, &format!("DNS: {when}"));
    s.comment(&format!("{} --stage dns", inputs.invocation));
    let steps = runbook::steps(inputs);
    for note in &steps[2].notes {
        s.comment(note);
    }
}

/// Stages 4-5 (steps 5-6): the port, then start the services.
fn start_stage(s: &mut Script, inputs: &Inputs) {
    let to = inputs.to;
    s.pause(
        4,
        &format!(
            "make sure port {} of pool {} is open from outside",
            inputs.srv_port, to.name
        ),
    );
    let steps = runbook::steps(inputs);
    for note in &steps[3].notes {
        s.comment(note);
    }
    s.pause(
        5,
        &format!(
            "start the Lync services on every Edge server of pool {}",
            to.name
        ),
    );
    for command in runbook::service_commands("Start-CsWindowsService", to) {
        s.live(&command);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_single_quote_powershell_knows() {
        assert_eq!(quote("Site 2"), "'Site 2'");
        assert_eq!(quote("O'Brien"), "'O''Brien'");
        assert_eq!(quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(
            quote("x\r\n'; Stop-Computer; '"),
            "'x''; Stop-Computer; '''"
        );
        assert_eq!(quote("$(whoami)"), "'$(whoami)'");
    }
}
