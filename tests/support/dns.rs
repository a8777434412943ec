//! DNS helpers over dig and nsupdate (bind9-dnsutils): queries, SOA serials, signed updates, AXFR, zone text.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::tools::{require, run};
use super::tsig::TsigKey;

/// Bound on one dig/nsupdate run (they also have their own shorter timeouts).
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// A reply as dig saw it: the RCODE ("NOERROR", "NXDOMAIN", "REFUSED", ...) and the answer rdata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsReply {
    pub status: String,
    /// The rdata of each answer record, as `dig +short` prints it.
    pub answers: Vec<String>,
}

/// One non-recursive query over UDP (`dig +norec`): `Err` when no reply came (refused, timeout).
pub fn query(server: SocketAddr, name: &str, rtype: &str) -> Result<DnsReply, String> {
    let mut cmd = Command::new(require("dig"));
    cmd.args([
        "+norec",
        "+noall",
        "+answer",
        "+comments",
        "+time=1",
        "+tries=2",
    ])
    .arg("-p")
    .arg(server.port().to_string())
    .arg(format!("@{}", server.ip()))
    .args([name, rtype]);
    let ran = run(&mut cmd, None, TOOL_TIMEOUT)?;
    let text = ran.output();
    let status = text
        .lines()
        .find_map(|line| line.split("status: ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .map(str::to_owned);
    let Some(status) = status else {
        return Err(format!(
            "no reply from {server} to {name} {rtype}: {}",
            text.trim()
        ));
    };
    let answers = ran
        .stdout
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| skip_fields(line, 4).to_owned())
        .collect();
    Ok(DnsReply { status, answers })
}

/// `line` without its first `n` whitespace-separated fields (the rest kept verbatim).
fn skip_fields(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

/// The answer rdata (like `dig +short +norec`) when the server answered NOERROR or NXDOMAIN.
pub fn try_dig(server: SocketAddr, name: &str, rtype: &str) -> Result<Vec<String>, String> {
    let reply = query(server, name, rtype)?;
    match reply.status.as_str() {
        "NOERROR" | "NXDOMAIN" => Ok(reply.answers),
        other => Err(format!("{server} answered {name} {rtype} with {other}")),
    }
}

/// The answer rdata (like `dig +short +norec`); panics when there is no NOERROR/NXDOMAIN reply.
pub fn dig(server: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    try_dig(server, name, rtype).unwrap_or_else(|e| panic!("{e}"))
}

/// The SOA serial `server` answers for `zone`.
pub fn try_soa_serial(server: SocketAddr, zone: &str) -> Result<u32, String> {
    let answers = try_dig(server, zone, "SOA")?;
    let first = answers
        .first()
        .ok_or_else(|| format!("{server} has no SOA for {zone}"))?;
    first
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{server}: unexpected SOA for {zone}: {first}"))
}

/// The SOA serial `server` answers for `zone`; panics without one.
pub fn soa_serial(server: SocketAddr, zone: &str) -> u32 {
    try_soa_serial(server, zone).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `check` every 20 ms until it returns `Ok`, at most `timeout`; then panics with its last error.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(e) if started.elapsed() >= timeout => {
                panic!("{what}: still not true after {timeout:?}; last: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until `server` answers `serial` as the SOA serial of `zone`.
pub fn wait_for_serial(server: SocketAddr, zone: &str, serial: u32, timeout: Duration) {
    wait_for(
        &format!("{server} serving {zone} at serial {serial}"),
        timeout,
        || match try_soa_serial(server, zone)? {
            s if s == serial => Ok(()),
            s => Err(format!("serial is {s}")),
        },
    );
}

/// Waits until `server` answers exactly `expected` (any order) for `name` `rtype`.
pub fn wait_for_rdata(
    server: SocketAddr,
    name: &str,
    rtype: &str,
    expected: &[&str],
    timeout: Duration,
) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    wait_for(
        &format!("{server} answering {name} {rtype} with {want:?}"),
        timeout,
        || {
            let mut got = try_dig(server, name, rtype)?;
            got.sort();
            if got == want {
                Ok(())
            } else {
                Err(format!("answers {got:?}"))
            }
        },
    );
}

/// Sends `script` (nsupdate commands: `zone`, `update add ...`, `prereq ...`) to `server`,
/// signed with `key` if given. A `server` line is prepended and `send` appended when missing.
/// `Ok(output)` on success, `Err(output)` when nsupdate failed (e.g. "update failed: REFUSED").
pub fn try_nsupdate(
    server: SocketAddr,
    key: Option<&TsigKey>,
    script: &str,
) -> Result<String, String> {
    let mut input = format!("server {} {}\n", server.ip(), server.port());
    input.push_str(script.trim_end());
    input.push('\n');
    let last = script.lines().map(str::trim).rfind(|l| !l.is_empty());
    if last != Some("send") {
        input.push_str("send\n");
    }
    let mut cmd = Command::new(require("nsupdate"));
    if let Some(key) = key {
        cmd.arg("-y").arg(key.dig_arg());
    }
    cmd.args(["-t", "5"]);
    let ran = run(&mut cmd, Some(&input), TOOL_TIMEOUT)?;
    if ran.success() {
        Ok(ran.output())
    } else {
        Err(format!(
            "nsupdate to {server} failed ({}): {}\nscript:\n{input}",
            ran.status,
            ran.output().trim()
        ))
    }
}

/// Like `try_nsupdate` signed with `key`, panicking on failure: changes "behind the tool's back".
pub fn nsupdate(server: SocketAddr, key: &TsigKey, script: &str) {
    if let Err(e) = try_nsupdate(server, Some(key), script) {
        panic!("{e}");
    }
}

/// The zone by AXFR signed with `key`, one `NAME TTL CLASS TYPE RDATA` line per record
/// (single spaces between the first four fields; the closing SOA left out).
pub fn try_axfr(server: SocketAddr, zone: &str, key: &TsigKey) -> Result<Vec<String>, String> {
    let mut cmd = Command::new(require("dig"));
    cmd.arg("-y")
        .arg(key.dig_arg())
        .args(["+noall", "+answer", "+time=2", "+tries=1"])
        .arg("-p")
        .arg(server.port().to_string())
        .arg(format!("@{}", server.ip()))
        .args([zone, "AXFR"]);
    let ran = run(&mut cmd, None, TOOL_TIMEOUT)?;
    let text = ran.output();
    if !ran.success() || text.contains("Transfer failed") || text.contains(";; ") {
        return Err(format!(
            "AXFR of {zone} from {server} failed: {}",
            text.trim()
        ));
    }
    let mut records: Vec<String> = ran
        .stdout
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| {
            let head: Vec<&str> = line.split_whitespace().take(4).collect();
            format!("{} {}", head.join(" "), skip_fields(line, 4))
        })
        .collect();
    if records.len() > 1 && records.first() == records.last() {
        records.pop();
    }
    if records.is_empty() {
        return Err(format!("AXFR of {zone} from {server}: no records"));
    }
    Ok(records)
}

/// `try_axfr`, panicking on failure.
pub fn axfr(server: SocketAddr, zone: &str, key: &TsigKey) -> Vec<String> {
    try_axfr(server, zone, key).unwrap_or_else(|e| panic!("{e}"))
}

/// A minimal zone: SOA (ns1.ZONE. hostmaster.ZONE. SERIAL 3600 600 86400 300), NS ns1, ns1 A
/// 127.0.0.1, then `records` (zone-file lines, relative to the origin or absolute).
pub fn zone_text(zone: &str, serial: u32, records: &str) -> String {
    let zone = zone.trim_end_matches('.');
    let mut text = String::new();
    let _ = writeln!(text, "$ORIGIN {zone}.");
    let _ = writeln!(text, "$TTL 300");
    let _ = writeln!(
        text,
        "@ IN SOA ns1.{zone}. hostmaster.{zone}. ( {serial} 3600 600 86400 300 )"
    );
    let _ = writeln!(text, "@ IN NS ns1");
    let _ = writeln!(text, "ns1 IN A 127.0.0.1");
    for line in records.lines() {
        let _ = writeln!(text, "{}", line.trim());
    }
    text
}

/// The serial of the (first) SOA record in zone-file text, if it can be found.
pub fn soa_serial_in_zone_text(text: &str) -> Option<u32> {
    let tokens = zone_tokens(text);
    let at = tokens.iter().position(|t| t.eq_ignore_ascii_case("SOA"))?;
    tokens.get(at + 3)?.parse().ok()
}

/// Zone-file tokens, without comments and parentheses; a quoted string is one token.
fn zone_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let mut current = String::new();
        let mut quoted = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if quoted => {
                    current.push(c);
                    current.extend(chars.next());
                }
                '"' => {
                    current.push(c);
                    quoted = !quoted;
                }
                ';' if !quoted => break,
                '(' | ')' if !quoted => tokens.extend(Some(std::mem::take(&mut current))),
                c if c.is_whitespace() && !quoted => {
                    tokens.extend(Some(std::mem::take(&mut current)))
                }
                c => current.push(c),
            }
        }
        tokens.push(current);
    }
    tokens.retain(|t| !t.is_empty());
    tokens
}
