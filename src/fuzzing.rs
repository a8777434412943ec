//! Entry points for coverage-guided fuzzing (`fuzz/`, `bench/fuzz.sh`) and for replaying the
//! committed inputs (`tests/fuzz_regressions.rs`): each target feeds arbitrary bytes to one
//! reader of untrusted input. A target must return, whatever the bytes: a panic, a hang or an
//! abort is a bug. The top layer: it may reach any reader.

use std::collections::BTreeSet;
use std::path::Path;

use crate::dns::tsig::{self, Algorithm, Secret, TsigKey, Verifier};
use crate::records::{Fqdn, RecordType, RrKey};

/// The targets, by name.
pub const TARGETS: &[&str] = &[
    "dns-message",
    "tsig-reply",
    "tsig-stream",
    "zonefile",
    "topology",
    "plan-file",
    "journal",
    "powerdns-json",
];

/// Runs `target` on `data`; `false` for an unknown target.
pub fn run(target: &str, data: &[u8]) -> bool {
    let text = || String::from_utf8_lossy(data);
    match target {
        "dns-message" => dns_message(data),
        "tsig-reply" => tsig_messages(data, false),
        "tsig-stream" => tsig_messages(data, true),
        "zonefile" => zonefile(&text()),
        "topology" => {
            let _ = crate::topology::Topology::from_json(&text(), Path::new("fuzz.json"));
        }
        "plan-file" => {
            let _ = crate::plan::PlanFile::parse(&text(), "fuzz.json");
        }
        "journal" => {
            let _ = crate::journal::parse(&text(), Path::new("fuzz.jsonl"));
        }
        "powerdns-json" => powerdns_json(data),
        _ => return false,
    }
    true
}

/// The wire reader (names, the additional section) and hickory's message decoder, as the
/// transfer and query code use them.
fn dns_message(data: &[u8]) {
    let _ = crate::dns::wire::last_additional_start(data);
    let _ = crate::dns::wire::id(data);
    let mut reader = crate::dns::wire::Reader::at(data, 12.min(data.len()));
    while reader.name().is_ok() && reader.u16().is_ok() {}
    if let Ok(message) = hickory_proto::op::Message::from_vec(data) {
        for record in message.answers() {
            let _ = crate::dns::convert::from_record(record);
        }
    }
}

fn fuzz_key() -> TsigKey {
    let secret = Secret::new(b"xmppdns fuzzing key, not secret".to_vec());
    TsigKey::new("fuzz-key", Algorithm::HmacSha256, secret).expect("a valid key")
}

/// The TSIG verifier on one reply, or (stream) on each length-prefixed message in turn, as a
/// transfer feeds it.
fn tsig_messages(data: &[u8], stream: bool) {
    let key = fuzz_key();
    let Ok(request) = tsig::sign(
        &key,
        vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 252, 0, 1],
        1_700_000_000,
    ) else {
        return;
    };
    let mut verifier = Verifier::new(&key, &request);
    if !stream {
        let _ = verifier.check(data, 1_700_000_000);
        return;
    }
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (message, tail) = rest[2..].split_at(len);
        if verifier.check(message, 1_700_000_000).is_err() {
            return;
        }
        rest = tail;
    }
}

fn zonefile(text: &str) {
    let origin = hickory_proto::rr::Name::from_ascii("contoso.com.").expect("a name");
    let _ = crate::provider::zonefile::parse_zone(text, Path::new("fuzz.zone"), &origin);
}

fn powerdns_json(data: &[u8]) {
    let Ok(document) = serde_json::from_slice::<crate::provider::powerdns::ZoneJson>(data) else {
        return;
    };
    let name = Fqdn::parse("xmpp.contoso.com").expect("a name");
    let keys: BTreeSet<RrKey> = [RecordType::A, RecordType::Aaaa, RecordType::Srv]
        .into_iter()
        .map(|rtype| RrKey::new(name.clone(), rtype))
        .collect();
    let _ = crate::provider::powerdns::snapshot(document, &keys);
}
