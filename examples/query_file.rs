//! Asks every question of a dnsperf query file (`NAME TYPE` per line) of one server with the
//! audit's query engine (`dns::batch::resolve_all`, the audit's default settings), once, and
//! prints the rate. `bench/audit-dnsperf.sh` runs it on dnsperf's own query file, so that the
//! engine and dnsperf are compared on exactly the same questions, apart from the audit's work
//! around them (reading answers into a snapshot, the rules, the report).
//!
//! Usage: cargo run --release --example query_file -- SERVER:PORT FILE

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use xmppdns::dns::batch::{resolve_all, BatchSettings, QueryType, Question};
use xmppdns::records::Fqdn;

fn qtype(text: &str) -> Option<QueryType> {
    Some(match text {
        "A" => QueryType::A,
        "AAAA" => QueryType::Aaaa,
        "SRV" => QueryType::Srv,
        "CNAME" => QueryType::Cname,
        "SOA" => QueryType::Soa,
        "NS" => QueryType::Ns,
        "TLSA" => QueryType::Tlsa,
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, file] = args.as_slice() else {
        eprintln!("usage: query_file SERVER:PORT FILE");
        return ExitCode::from(1);
    };
    let Ok(server) = server.parse::<SocketAddr>() else {
        eprintln!("query_file: {server} is not an address:port");
        return ExitCode::from(1);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("query_file: {file}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut questions = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(qtype)) = (words.next(), words.next().and_then(qtype)) else {
            eprintln!("query_file: {file}: cannot read the line {line:?}");
            return ExitCode::from(1);
        };
        let name = Fqdn::from_absolute(&format!("{}.", name.trim_end_matches('.')));
        questions.push(Question {
            server,
            name,
            qtype,
            recursion_desired: false,
        });
    }
    let started = Instant::now();
    let (answers, stats) = resolve_all(&questions, &BatchSettings::default(), &mut |_| {});
    let elapsed = started.elapsed();
    let failed = answers.iter().filter(|a| a.is_err()).count();
    println!(
        "{} questions in {:.3} s: {:.0} queries/s, {} retries, {} unanswered, {} failed",
        questions.len(),
        elapsed.as_secs_f64(),
        questions.len() as f64 / elapsed.as_secs_f64(),
        stats.retries,
        stats.unanswered,
        failed
    );
    ExitCode::SUCCESS
}
