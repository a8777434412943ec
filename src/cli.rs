//! Command-line definitions (clap derive) and nothing else: no I/O here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "xmppdns",
    version,
    about = "Plan, push and audit the DNS records of XMPP federation for Lync Server 2013 / Skype for Business Edge pools",
    long_about = None,
    after_help = "Exit codes: 0 success or no changes, 1 error, 2 changes pending (plan --detailed-exitcode), 3 refused (unsafe or stale plan, stale rollback, failed probe), 4 audit found errors, 5 applied but not propagated in time."
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `audit --format`: the shared formats and the Nagios/Icinga check line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Nagios,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would change in DNS to match the topology.
    #[command(after_help = "Examples:
  xmppdns plan fixtures/contoso.json
  xmppdns plan fixtures/contoso.json --format json
  xmppdns plan topology.json --out plan.json --detailed-exitcode")]
    Plan(PlanArgs),
    /// Apply a topology, or a plan saved with `plan --out`, then read back.
    #[command(after_help = "Examples:
  xmppdns apply topology.json            (asks for confirmation on a terminal)
  xmppdns apply topology.json --yes
  xmppdns apply plan.json --yes          (refused with exit 3 if DNS changed since the plan)")]
    Apply(ApplyArgs),
    /// Move XMPP federation to another Edge pool in the procedure's stages: your Lync steps,
    /// the DNS change (guarded), your start of the services, then verify.
    #[command(after_help = "Examples:
  xmppdns failover topology.json --to EdgePool2 --dry-run --runbook failover.ps1
  xmppdns failover topology.json --to EdgePool2      (on a terminal: walks you through)
  xmppdns failover topology.json --to EdgePool2 --stage lync
  xmppdns failover topology.json --to EdgePool2 --stage dns --yes
  xmppdns failover topology.json --to EdgePool2 --stage verify --verify-timeout 300

Exit codes: 0 done, 1 error, 3 refused (unsafe or stale, --require-live probe failed), 5 DNS
changed but not verified (the pool did not answer XMPP, or a server did not serve the change).")]
    Failover(FailoverArgs),
    /// Fail back to the pool that was active before the last failover (from the journal), in
    /// the same stages as failover.
    #[command(
        after_help = "Examples:\n  xmppdns failback topology.json\n  xmppdns failback topology.json --stage dns --yes"
    )]
    Failback(FailbackArgs),
    /// Lower the TTLs a move touches ahead of a planned move, and say when remote caches can
    /// no longer hold the old answers (run again: the time left; nothing changes).
    #[command(after_help = "Examples:
  xmppdns drain topology.json --ttl 60 --yes      (an hour or more before the move)
  xmppdns drain topology.json                    (again: the time left)")]
    Drain(DrainArgs),
    /// Restore the topology's TTLs after a drain and the move.
    #[command(after_help = "Examples:\n  xmppdns settle topology.json --yes")]
    Settle(SettleArgs),
    /// A disaster-recovery drill: audit, probe, optionally drain, fail over, verify, hold
    /// while probing, fail back, verify again; writes a report (JSON or HTML).
    #[command(after_help = "Examples:
  xmppdns drill topology.json --to EdgePool2 --hold 300 --report drill.html
  xmppdns drill topology.json --to EdgePool2 --drain --yes --report drill.json

Exit codes: 0 passed, 1 error before the drill started, 5 a step failed (the report says
where the drill stopped and what state it left).")]
    Drill(DrillArgs),
    /// Restore the RRsets an earlier apply replaced, if they still hold what it wrote.
    #[command(after_help = "Examples:
  xmppdns rollback topology.json            (the last command's changes)
  xmppdns rollback topology.json --to 12    (journal entry 12)")]
    Rollback(RollbackArgs),
    /// Write a new TSIG key in BIND format (include it in named.conf; point the topology at it).
    #[command(after_help = "Examples:
  xmppdns keygen xmppdns-key > xmppdns.key
  xmppdns keygen xmppdns-key --algorithm hmac-sha512 --out /etc/xmppdns/xmppdns.key")]
    Keygen(KeygenArgs),
    /// Check what the authoritative DNS servers serve against the XMPP federation rules
    /// (and, with a topology, against its plan and active pool).
    #[command(after_help = "Examples:
  xmppdns audit --domain contoso.com
  xmppdns audit topology.json --format json
  xmppdns audit --domain contoso.com --domain fabrikam.com --nameserver 192.0.2.53 --probe

Exit codes: 0 no error-level finding, 4 error-level findings, 1 the audit could not run.
With --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the audit could not run).")]
    Audit(AuditArgs),
    /// Run the audit (and probes) on a schedule; serve Prometheus metrics, /healthz and a
    /// status page.
    #[command(after_help = "Examples:
  xmppdns monitor topology.json
  xmppdns monitor topology.json --listen 127.0.0.1:9469 --interval 60 --probe

Stops on SIGTERM or SIGINT after the cycle in progress. The page and metrics have no
authentication: keep the default loopback address, or put a proxy in front.")]
    Monitor(MonitorArgs),
    /// Write a starting topology from what DNS serves today (use with --from-dns).
    #[command(after_help = "Examples:
  xmppdns init --from-dns --domain contoso.com --domain fabrikam.com --out topology.json
  xmppdns init --from-dns --domain contoso.com --nameserver 192.0.2.53")]
    Init(InitArgs),
    /// List the journal's entries: what each command changed, when, who ran it and why.
    #[command(after_help = "Examples:
  xmppdns journal topology.json --last 5
  xmppdns journal --journal /var/lib/xmppdns/contoso.journal.jsonl --format json")]
    Journal(JournalArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  xmppdns completions bash > /etc/bash_completion.d/xmppdns"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  xmppdns man | man -l -")]
    Man,
}

// The arguments of each command, one struct per command so `main` dispatches on one value.
// They carry no doc comment of their own: the help text of a command is its variant's.

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The topology JSON file.
    pub topology: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also save the plan (JSON, with checksums) for `apply PLAN.json`.
    #[arg(long, value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (0 when none).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show every change in the table, however many (beyond 500 the table shows how many
    /// changes each zone has of each action).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A topology JSON file or a saved plan.
    pub input: PathBuf,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Apply even a plan the safety check refuses.
    #[arg(long)]
    pub force: bool,
    /// Output format of the plan shown before applying.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The journal to append to (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Show every change in the table, however many (beyond 500 the table shows how many
    /// changes each zone has of each action).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// The topology JSON file.
    pub topology: PathBuf,
    /// The lowered TTL in seconds (1 to 3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub ttl: u32,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Apply even a plan the safety check refuses.
    #[arg(long)]
    pub force: bool,
    /// How long to wait for every authoritative server to serve the lower TTL (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait: u64,
    /// An authoritative server to check (repeatable; adds to the topology's `nameservers`).
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// The journal (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The topology JSON file.
    pub topology: PathBuf,
    /// The pool to fail over to (and back from).
    #[arg(long, value_name = "POOL")]
    pub to: String,
    /// Seconds to stay on the new pool, probing it.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub hold: u64,
    /// Drain the TTLs first (see `drain`); the drill does not wait for the drain to complete.
    #[arg(long)]
    pub drain: bool,
    /// The drained TTL.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub drain_ttl: u32,
    /// Never probe the pools: verify checks DNS only.
    #[arg(long)]
    pub skip_probe: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Write the report: `.html` for a page, anything else for JSON.
    #[arg(long, value_name = "FILE.json|FILE.html")]
    pub report: Option<PathBuf>,
    /// An authoritative server to check (repeatable; adds to the topology's `nameservers`).
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// How long each verify waits (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub verify_timeout: u64,
    /// Per-address time limit of the port 5269 probe (1 to 300).
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub probe_timeout: u64,
    /// The journal (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SettleArgs {
    /// The topology JSON file.
    pub topology: PathBuf,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Apply even a plan the safety check refuses.
    #[arg(long)]
    pub force: bool,
    /// The journal (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// The topology JSON file (its `active_pool` is updated after the move).
    pub topology: PathBuf,
    /// The pool to move to.
    #[arg(long, value_name = "POOL")]
    pub to: String,
    #[command(flatten)]
    pub move_options: MoveOptions,
    /// Keep the SRV priorities as they are (only the federation record moves).
    #[arg(long)]
    pub no_promote: bool,
}

#[derive(Debug, clap::Args)]
pub struct FailbackArgs {
    /// The topology JSON file.
    pub topology: PathBuf,
    #[command(flatten)]
    pub move_options: MoveOptions,
    /// Keep the SRV priorities as they are (only the federation record moves).
    #[arg(long)]
    pub no_promote: bool,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The topology JSON file (for the provider and the default journal).
    pub topology: PathBuf,
    /// The journal entry id (default: every entry of the last command, if it succeeded).
    #[arg(long, value_name = "ENTRY")]
    pub to: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Restore even what the safety check refuses (e.g. the removal of every SRV record).
    #[arg(long)]
    pub force: bool,
    /// The journal (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The key name (as the server will know it).
    pub name: String,
    /// hmac-sha256 (default), hmac-sha384, hmac-sha512, or hmac-sha1 for older servers.
    #[arg(long, default_value = "hmac-sha256")]
    pub algorithm: String,
    /// Write to this file (created with mode 0600) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out: give the file to this group, readable by it (mode 0640), e.g. `bind` for
    /// Debian's named.
    #[arg(long, value_name = "NAME", requires = "out")]
    pub group: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// A topology JSON file: also report drift, the leading pool and the federation record.
    pub topology: Option<PathBuf>,
    /// A SIP domain to audit (repeatable; added to the topology's).
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Ask these authoritative servers (repeatable; all are compared). Default: the zone's
    /// NS records, found through the resolvers of /etc/resolv.conf.
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// Also connect to port 5269 of every SRV target and expect an XMPP server (rule 9), then
    /// STARTTLS with each SIP domain and judge the certificate (rules 18-21).
    #[arg(long)]
    pub probe: bool,
    /// Output format (`nagios`: one status line with perfdata, plugin exit codes 0/1/2/3).
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Trust this CA (PEM) instead of the public roots (default: the topology's
    /// `tls.ca_file`).
    #[arg(long = "ca", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Warn when a certificate expires in fewer days than this (rule 19).
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pub cert_warn_days: i64,
    /// Queries in flight at once, at most (fewer after a loss, until answers come back).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub concurrency: usize,
    /// Longest first timeout of a query in milliseconds (shorter once round trips are
    /// measured, at least 50; doubled on each of 4 attempts).
    #[arg(long, default_value_t = 800, value_name = "MS")]
    pub timeout_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// The topology JSON file (read again at every cycle).
    pub topology: PathBuf,
    /// The HTTP address to serve on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9469")]
    pub listen: std::net::SocketAddr,
    /// Seconds from the start of one cycle to the next (0: back to back).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub interval: u64,
    /// Also probe port 5269 and check the certificates (rules 9, 18-21).
    #[arg(long)]
    pub probe: bool,
    /// Ask these authoritative servers (default: the topology's `nameservers`, else the NS
    /// records through /etc/resolv.conf).
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// Trust this CA (PEM) instead of the public roots (default: the topology's
    /// `tls.ca_file`).
    #[arg(long = "ca", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Warn when a certificate expires in fewer days than this (rule 19).
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pub cert_warn_days: i64,
    /// Stop after this many cycles (for tests and memory measurements).
    #[arg(long, value_name = "N", hide = true)]
    pub max_cycles: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Infer the topology from the SRV records and addresses DNS serves (required).
    #[arg(long, required = true)]
    pub from_dns: bool,
    /// A SIP domain (repeatable; at least one).
    #[arg(long = "domain", value_name = "DOMAIN", required = true)]
    pub domains: Vec<String>,
    /// Ask these authoritative servers instead of the zone's NS records.
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// The federation A record's name (default: xmpp.<first domain>).
    #[arg(long, value_name = "NAME")]
    pub federation: Option<String>,
    /// Write the topology here (refuses to overwrite) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["topology", "journal"]))]
pub struct JournalArgs {
    /// The topology JSON file (its journal is `<name>.journal.jsonl` beside it).
    pub topology: Option<PathBuf>,
    /// The journal file (instead of the topology's).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Only the last N entries.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// The stage of a move to run alone (without a terminal, or scripted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MoveStage {
    /// Plan, and show the Lync steps (stop the new pool's services, repoint the route).
    Lync,
    /// Change DNS (guarded) and record the move in the topology.
    Dns,
    /// Wait until the new pool answers XMPP and every authoritative server serves the change.
    Verify,
}

/// What failover and failback share.
///
/// The probe flags: the new pool is not probed before the DNS change unless `--require-live`
/// asks (its services are stopped then, by the procedure); the verify stage always probes it
/// unless `--skip-probe`. `--force` goes on after a failed `--require-live` probe, and past
/// the safety check.
#[derive(Debug, clap::Args)]
pub struct MoveOptions {
    /// Show the plan, the stages and the runbook (and what the probe finds); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run one stage and say what comes next (default: all of them; on a terminal, with a
    /// pause for each of your steps).
    #[arg(long, value_enum, value_name = "STAGE")]
    pub stage: Option<MoveStage>,
    /// Refuse to change DNS unless the new pool already answers XMPP (active/active pools).
    #[arg(long, conflicts_with = "skip_probe")]
    pub require_live: bool,
    /// Never probe the new pool: verify checks DNS only (said so in the output).
    #[arg(long)]
    pub skip_probe: bool,
    /// Go on although the --require-live probe found no XMPP answer, or the plan is unsafe.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation before changing DNS.
    #[arg(short, long)]
    pub yes: bool,
    /// Also write the runbook as a PowerShell script.
    #[arg(long, value_name = "FILE.ps1")]
    pub runbook: Option<PathBuf>,
    /// An authoritative server to check (repeatable; adds to the topology's `nameservers`).
    #[arg(long = "nameserver", value_name = "ADDR[:PORT]")]
    pub nameservers: Vec<String>,
    /// How long verify waits for the pool to answer and every authoritative server to serve
    /// the change (1 to 86400).
    #[arg(long, alias = "propagation-timeout", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub verify_timeout: u64,
    /// Per-address time limit of the port 5269 probe (1 to 300).
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub probe_timeout: u64,
    /// The journal (default: TOPOLOGY's folder, `<name>.journal.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Why (e.g. a change ticket), recorded in the journal with who ran the command.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// After verify, write its result and the times (`authoritative_at`, `world_at`) as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub summary: Option<std::path::PathBuf>,
}
