//! The runbook: the failover steps the tool cannot run (PowerShell on the Edge servers), in the
//! order of Microsoft's Lync 2013 procedure, with the real names from the topology and the DNS
//! and port checks the tool did marked as done.

use std::fmt::Write as _;

use crate::plan::Plan;
use crate::probe::ProbeResult;
use crate::topology::Pool;

/// One step: what it is for, the PowerShell lines to run (none for the tool's own steps), and
/// what the tool already did or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub commands: Vec<String>,
    pub notes: Vec<String>,
}

/// The steps of a failover from `from` to `to`.
pub struct Inputs<'a> {
    pub from: &'a Pool,
    pub to: &'a Pool,
    pub plan: &'a Plan,
    /// `None` when the probe was skipped.
    pub probes: Option<&'a [ProbeResult]>,
    pub dns: DnsStep,
    pub srv_port: u16,
}

/// Where the DNS step stands when the runbook is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsStep {
    Done,
    DryRun,
    /// The apply failed part-way or did not read back as planned.
    Incomplete,
}

/// The parameter the failover runbook uses; Microsoft's `Set-CsSite` reference documents it as
/// `-XmppFederationRoute`, so the other spelling is mentioned next to it.
const ROUTE_PARAMETER: &str = "-XmppExternalFederationRoute";
const ROUTE_PARAMETER_OTHER: &str = "-XmppFederationRoute";

/// The steps, in the order of Microsoft's procedure: stop the new pool's Edge services, route
/// federation through its site, DNS, the port check, start the services.
pub fn steps(inputs: &Inputs) -> Vec<Step> {
    let to = inputs.to;
    let servers = edge_servers(to);
    let route_target = servers[0].clone();
    vec![
        Step {
            title: format!(
                "Stop the Lync services on every Edge server of the new pool {} (site {})",
                to.name, to.site
            ),
            commands: servers
                .iter()
                .map(|s| format!("Stop-CsWindowsService -ComputerName {s}"))
                .collect(),
            notes: no_servers_note(to),
        },
        Step {
            title: format!(
                "Route XMPP federation through site {} (was {} in site {})",
                to.site, inputs.from.name, inputs.from.site
            ),
            commands: vec![format!(
                "Set-CsSite -Identity {} {ROUTE_PARAMETER} {route_target}",
                to.site
            )],
            notes: vec![format!(
                "Microsoft's Set-CsSite reference spells this parameter {ROUTE_PARAMETER_OTHER}; use that form if {ROUTE_PARAMETER} is not recognised."
            )],
        },
        Step {
            title: format!(
                "DNS: federation A/AAAA to pool {}, its _xmpp-server._tcp SRV records present and leading",
                to.name
            ),
            commands: Vec::new(),
            notes: dns_notes(inputs),
        },
        Step {
            title: format!(
                "Port {} of pool {} must be open from outside",
                inputs.srv_port, to.name
            ),
            commands: Vec::new(),
            notes: probe_notes(inputs),
        },
        Step {
            title: format!(
                "Start the Lync services on every Edge server of pool {}",
                to.name
            ),
            commands: servers
                .iter()
                .map(|s| format!("Start-CsWindowsService -ComputerName {s}"))
                .collect(),
            notes: Vec::new(),
        },
    ]
}

/// The computer names of the new pool's Edge servers, or its pool FQDN when the topology
/// lists none.
fn edge_servers(pool: &Pool) -> Vec<String> {
    if pool.servers.is_empty() {
        vec![pool.fqdn.bare().to_string()]
    } else {
        pool.servers.iter().map(|s| s.bare().to_string()).collect()
    }
}

/// Says so when the pool FQDN stands in for the Edge servers' names.
fn no_servers_note(pool: &Pool) -> Vec<String> {
    if pool.servers.is_empty() {
        vec![format!(
            "The topology lists no Edge servers for pool {}; the pool FQDN stands in. Add `servers` to the pool for the real computer names.",
            pool.name
        )]
    } else {
        Vec::new()
    }
}

/// Where the DNS step stands, and each change with its RRsets before and after.
fn dns_notes(inputs: &Inputs) -> Vec<String> {
    if inputs.plan.is_empty() {
        return vec!["DNS already pointed to the new pool: nothing to change.".to_string()];
    }
    let state = match inputs.dns {
        DnsStep::Done => "done by xmppdns",
        DnsStep::DryRun => "to do (dry run: nothing was changed)",
        DnsStep::Incomplete => "NOT complete: see the error; re-run the same command, it converges",
    };
    let mut notes = vec![format!("{} change(s), {state}:", inputs.plan.changes.len())];
    let show = |set: &Option<crate::records::RecordSet>| match set {
        None => "(none)".to_string(),
        Some(s) => s
            .records()
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    for change in &inputs.plan.changes {
        notes.push(format!(
            "  {} {} {}: {} -> {}",
            change.action.as_str(),
            change.name,
            change.rtype,
            show(&change.before),
            show(&change.after)
        ));
    }
    notes
}

/// What the probe of the new pool found, address by address.
fn probe_notes(inputs: &Inputs) -> Vec<String> {
    match inputs.probes {
        None => vec!["Skipped (--skip-probe): check the port by hand.".to_string()],
        Some([]) => vec![format!(
            "Pool {} has no addresses in the topology to probe.",
            inputs.to.name
        )],
        Some(results) => results
            .iter()
            .map(|r| format!("{}: {}", r.address, r.detail))
            .collect(),
    }
}

/// The steps for people, numbered.
pub fn text(steps: &[Step]) -> String {
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, step.title);
        for command in &step.commands {
            let _ = writeln!(out, "     {command}");
        }
        for note in &step.notes {
            let _ = writeln!(out, "     # {note}");
        }
    }
    out
}

/// The steps as a PowerShell script: commands to run, everything else as comments.
pub fn powershell(steps: &[Step], heading: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {heading}");
    let _ = writeln!(
        out,
        "# Run in the Lync Server Management Shell, step by step; read each comment first."
    );
    let _ = writeln!(out, "$ErrorActionPreference = 'Stop'");
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "# Step {}: {}", i + 1, step.title);
        for note in &step.notes {
            let _ = writeln!(out, "# {note}");
        }
        for command in &step.commands {
            let _ = writeln!(out, "{command}");
        }
    }
    out
}
