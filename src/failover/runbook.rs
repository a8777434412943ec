//! The runbook: Microsoft's Lync 2013 procedure for moving XMPP federation to another Edge pool,
//! as stages with the real names from the topology. The admin's steps carry their exact
//! PowerShell commands; the tool's own steps (DNS, verify) say where they stand.
//!
//! Every name in it is quoted for PowerShell, and every string a peer or DNS controls is
//! stripped of control characters first: the runbook is meant to be run.

use std::fmt::Write as _;

use crate::failover::powershell::quote;
use crate::plan::Plan;
use crate::probe::{printable, ProbeResult};
use crate::topology::Pool;

/// The stages of a move, in the procedure's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The admin stops the new pool's Edge services and repoints the route (steps 1-2).
    Lync,
    /// xmppdns changes DNS (steps 3-4).
    Dns,
    /// The admin opens the port and starts the services (steps 5-6).
    Start,
    /// xmppdns waits for the pool to answer and every authoritative server to serve the change.
    Verify,
}

impl Stage {
    /// The `--stage` value, for the stages the tool runs alone.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Lync => "lync",
            Stage::Dns => "dns",
            Stage::Start => "start",
            Stage::Verify => "verify",
        }
    }
}

/// Who does a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Admin,
    Xmppdns,
}

/// One step: its stage, who does it, what it is for, the PowerShell lines to run (none for the
/// tool's own steps), and notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub stage: Stage,
    pub by: Actor,
    pub title: String,
    pub commands: Vec<String>,
    pub notes: Vec<String>,
}

/// What the runbook is made of.
pub struct Inputs<'a> {
    /// `failover` or `failback`.
    pub command: &'a str,
    pub from: &'a Pool,
    pub to: &'a Pool,
    pub plan: &'a Plan,
    /// The probe of the new pool before the DNS change, when one ran.
    pub probes: Option<&'a [ProbeResult]>,
    pub dns: DnsStep,
    pub verify: VerifyStep,
    pub srv_port: u16,
    /// The command line that runs the tool's stages, without `--stage`
    /// (e.g. `xmppdns failover topology.json --to EdgePool2`).
    pub invocation: String,
}

/// Where the DNS step stands when the runbook is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsStep {
    /// Not run yet (`--stage lync`).
    NotYet,
    Done,
    DryRun,
    /// The apply failed part-way or did not read back as planned.
    Incomplete,
}

/// Where the verification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStep {
    NotYet,
    Passed,
    /// What did not pass, one line each.
    Failed(Vec<String>),
}

/// The computer names of a pool's Edge servers, or its pool FQDN when the topology lists none.
pub fn edge_servers(pool: &Pool) -> Vec<String> {
    if pool.servers.is_empty() {
        vec![pool.fqdn.bare().to_string()]
    } else {
        pool.servers.iter().map(|s| s.bare().to_string()).collect()
    }
}

/// The Edge server the federation route names: the pool's first.
pub fn route_server(pool: &Pool) -> String {
    edge_servers(pool).remove(0)
}

/// `Verb -ComputerName 'server'` for every Edge server of `pool`.
pub fn service_commands(verb: &str, pool: &Pool) -> Vec<String> {
    edge_servers(pool)
        .iter()
        .map(|s| format!("{verb} -ComputerName {}", quote(s)))
        .collect()
}

/// What a placeholder pool's commands are prefixed with: never live.
pub const FILL_IN: &str = "# FILL IN, then run: ";

/// The steps, in the order of Microsoft's procedure.
pub fn steps(inputs: &Inputs) -> Vec<Step> {
    let to = inputs.to;
    let mut start = service_commands("Start-CsWindowsService", to);
    if to.placeholder {
        start.iter_mut().for_each(|c| c.insert_str(0, FILL_IN));
    }
    let mut steps = lync_steps(inputs);
    steps.extend([
        Step {
            stage: Stage::Dns,
            by: Actor::Xmppdns,
            title: format!(
                "DNS: federation A/AAAA to pool {}, its _xmpp-server._tcp SRV records present and leading",
                to.name
            ),
            commands: Vec::new(),
            notes: dns_notes(inputs),
        },
        Step {
            stage: Stage::Start,
            by: Actor::Admin,
            title: format!(
                "Make sure port {} of pool {} is open from outside",
                inputs.srv_port, to.name
            ),
            commands: Vec::new(),
            notes: probe_notes(inputs),
        },
        Step {
            stage: Stage::Start,
            by: Actor::Admin,
            title: format!("Start the Lync services on every Edge server of pool {}", to.name),
            commands: start,
            notes: Vec::new(),
        },
        Step {
            stage: Stage::Verify,
            by: Actor::Xmppdns,
            title: format!(
                "Verify: every address of pool {} answers XMPP on port {}, every authoritative server serves the change",
                to.name, inputs.srv_port
            ),
            commands: Vec::new(),
            notes: verify_notes(inputs),
        },
    ]);
    steps
}

/// The procedure's steps 1-2: stop the new pool's Edge services, repoint the route, check it
/// and wait for replication. A placeholder pool's commands are commented out.
fn lync_steps(inputs: &Inputs) -> Vec<Step> {
    let to = inputs.to;
    let site = quote(&to.site);
    let route = route_server(to);
    let mut route_commands = vec![
        format!(
            "Set-CsSite -Identity {site} -XmppExternalFederationRoute {}",
            quote(&route)
        ),
        format!("Get-CsSite -Identity {site}"),
        "Get-CsManagementStoreReplicationStatus".to_string(),
    ];
    let mut stop = service_commands("Stop-CsWindowsService", to);
    if to.placeholder {
        for command in route_commands.iter_mut().chain(stop.iter_mut()) {
            command.insert_str(0, FILL_IN);
        }
    }
    vec![
        Step {
            stage: Stage::Lync,
            by: Actor::Admin,
            title: format!(
                "Stop the Lync services on every Edge server of the new pool {} (site {})",
                to.name, to.site
            ),
            commands: stop,
            notes: pool_notes(to),
        },
        Step {
            stage: Stage::Lync,
            by: Actor::Admin,
            title: format!(
                "Route XMPP federation through site {} (was {} in site {}), check it, wait for replication",
                to.site, inputs.from.name, inputs.from.site
            ),
            commands: route_commands,
            notes: vec![
                format!("Where (Get-Command Set-CsSite).Parameters.ContainsKey('XmppExternalFederationRoute') is False, use: Set-CsSite -Identity {site} -XmppFederationRoute {}", quote(&format!("EdgeServer:{route}"))),
                "Get-CsSite must show the new route; wait until Get-CsManagementStoreReplicationStatus shows UpToDate True for every replica.".to_string(),
            ],
        },
    ]
}

/// Says when the pool's names are guesses, or when its FQDN stands in for the servers.
fn pool_notes(pool: &Pool) -> Vec<String> {
    let mut notes = Vec::new();
    if pool.placeholder {
        notes.push(format!(
            "Pool {} is marked \"placeholder\": its site and Edge server names are guesses. Fill them in in the topology and remove the marker; until then no command here is live.",
            pool.name
        ));
    }
    if pool.servers.is_empty() {
        notes.push(format!(
            "The topology lists no Edge servers for pool {}; the pool FQDN stands in. Add `servers` to the pool for the real computer names.",
            pool.name
        ));
    }
    notes
}

/// Where the DNS step stands, and each change with its RRsets before and after.
fn dns_notes(inputs: &Inputs) -> Vec<String> {
    if inputs.plan.is_empty() {
        return vec!["DNS already points to the new pool: nothing to change.".to_string()];
    }
    let state = match inputs.dns {
        DnsStep::NotYet => format!("to do: {} --stage dns", inputs.invocation),
        DnsStep::Done => "done by xmppdns".to_string(),
        DnsStep::DryRun => "to do (dry run: nothing was changed)".to_string(),
        DnsStep::Incomplete => {
            "NOT complete: see the error; re-run the DNS stage, it converges".to_string()
        }
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

/// What the probe of the new pool before the DNS change found, address by address.
fn probe_notes(inputs: &Inputs) -> Vec<String> {
    let addresses: Vec<String> = inputs
        .to
        .ipv4
        .iter()
        .map(ToString::to_string)
        .chain(inputs.to.ipv6.iter().map(ToString::to_string))
        .collect();
    let mut notes = vec![format!(
        "Remote XMPP servers connect to {} on port {}.",
        if addresses.is_empty() {
            "(no addresses in the topology)".to_string()
        } else {
            addresses.join(", ")
        },
        inputs.srv_port
    )];
    if let Some(results) = inputs.probes {
        notes.extend(
            results
                .iter()
                .map(|r| format!("Before the DNS change, {}: {}", r.address, r.detail)),
        );
    }
    notes
}

/// Where the verification stands, and what to check when it failed.
fn verify_notes(inputs: &Inputs) -> Vec<String> {
    match &inputs.verify {
        VerifyStep::NotYet => vec![format!("to do: {} --stage verify", inputs.invocation)],
        VerifyStep::Passed => vec!["done: verified by xmppdns".to_string()],
        VerifyStep::Failed(problems) => {
            let mut notes = vec!["FAILED (DNS is left changed):".to_string()];
            notes.extend(problems.iter().map(|p| format!("  {p}")));
            notes.push(format!("Check on every Edge server of the pool that the Lync services run (Get-CsWindowsService), that port {} reaches it from outside (firewall, NAT), and that its external certificate names every SIP domain.", inputs.srv_port));
            notes.push(format!(
                "Then check again: {} --stage verify",
                inputs.invocation
            ));
            notes
        }
    }
}

/// The steps for people, numbered, with who does each.
pub fn text(steps: &[Step]) -> String {
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}", step_text(i + 1, step));
    }
    out
}

/// One step for people: `N. [who] title`, its commands indented, its notes as comments.
pub fn step_text(number: usize, step: &Step) -> String {
    let who = match step.by {
        Actor::Admin => "you",
        Actor::Xmppdns => "xmppdns",
    };
    let mut out = format!("{number}. [{who}] {}", printable(&step.title));
    for command in &step.commands {
        let _ = write!(out, "\n     {}", printable(command));
    }
    for note in &step.notes {
        let _ = write!(out, "\n     # {}", printable(note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_from_the_wire_cannot_start_a_line_of_its_own() {
        let step = Step {
            stage: Stage::Dns,
            by: Actor::Xmppdns,
            title: "DNS".into(),
            commands: vec!["Start-CsWindowsService -ComputerName 'a\r\nb'".into()],
            notes: vec!["update x.contoso.com. SRV: 10 0 5269 evil\n.\u{2029}Stop-Computer".into()],
        };
        let text = step_text(3, &step);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text
            .lines()
            .all(|l| !l.trim_start().starts_with("Stop-Computer")));
        assert!(text.ends_with("# update x.contoso.com. SRV: 10 0 5269 evil.Stop-Computer"));
    }
}
