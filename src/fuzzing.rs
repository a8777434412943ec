//! Entry points for coverage-guided fuzzing (`fuzz/`, `bench/fuzz.sh`) and for replaying the
//! committed inputs (`tests/fuzz_regressions.rs`): each target feeds arbitrary bytes to one
//! reader of untrusted input. A target must return, whatever the bytes: a panic, a hang or an
//! abort is a bug. The top layer: it may reach any reader.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use crate::dns::transfer::ZoneData;
use crate::dns::tsig::{self, Algorithm, Secret, TsigKey, Verdict, Verifier};
use crate::dns::DnsError;
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
    "axfr-collector",
    "xmpp-stream",
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
        "axfr-collector" => {
            let _ = axfr_collector(data);
        }
        "xmpp-stream" => {
            let _ = xmpp_stream(data);
        }
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

/// What the verifier may say of a message, from one input byte: the low two bits choose
/// verified, unsigned or a server's TSIG error (signed or not), the rest its code and whether
/// the server's time came with it, so every branch of the transfer's checks is reachable.
fn fuzz_verdict(byte: u8) -> Verdict {
    match byte & 3 {
        0 => Verdict::Verified,
        1 => Verdict::Unsigned,
        kind => Verdict::ServerError {
            code: u16::from(byte >> 3),
            server_time: (byte & 4 != 0).then_some(1_700_000_000),
            signed: kind == 3,
        },
    }
}

/// The AXFR collector on a stream of messages, as `axfr` feeds it. The input: one byte, whose
/// low bit says whether the transfer is signed; then, per message, a verdict byte (see
/// [`fuzz_verdict`]), a two-byte length and the message. `Ok(None)` when the input ends
/// before the zone does (the transport would report a cut stream).
fn axfr_collector(data: &[u8]) -> Result<Option<ZoneData>, DnsError> {
    let Some((&flags, mut rest)) = data.split_first() else {
        return Ok(None);
    };
    let key = fuzz_key();
    let keep = |_: &RrKey| true;
    let server = SocketAddr::from(([192, 0, 2, 53], 53));
    let mut transfer = crate::dns::transfer::TransferCollector::new(
        server,
        (flags & 1 == 1).then_some(&key),
        &keep,
    );
    while rest.len() >= 3 {
        let verdict = fuzz_verdict(rest[0]);
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (message, tail) = rest[3..].split_at(len);
        // The transport stops reading at the end of the zone: only then is it complete.
        if transfer.message(message, &verdict)? {
            return transfer.finish().map(Some);
        }
        rest = tail;
    }
    Ok(None)
}

/// The probe's reading of a peer's stream header, features and errors: the input arrives in
/// reads of up to 512 bytes (smaller than the probe's buffer, so answers cut mid-tag are
/// judged too), until the probe would stop or the peer closes.
fn xmpp_stream(data: &[u8]) -> crate::probe::ProbeResult {
    let mut result = crate::probe::ProbeResult {
        address: SocketAddr::from(([192, 0, 2, 1], 5269)),
        status: crate::probe::ProbeStatus::Unreachable,
        starttls: false,
        from: None,
        stream_error: None,
        connect_ms: Some(1),
        total_ms: 0,
        detail: String::new(),
    };
    let mut received = Vec::new();
    let mut chunks = data.chunks(512);
    let ending = loop {
        if let Some(enough) = crate::probe::enough_read(&received) {
            break enough;
        }
        match chunks.next() {
            Some(chunk) => received.extend_from_slice(chunk),
            None => break Err("the peer closed the connection".to_string()),
        }
    };
    crate::probe::judge(&received, ending, &mut result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target)
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    // The seeds must reach the code they are named after, or fuzzing starts from nothing.
    #[test]
    fn the_transfer_seeds_reach_the_end_of_the_zone_and_each_refusal() {
        for name in ["unsigned-three-messages", "signed-chained-three-messages"] {
            let zone = axfr_collector(&seed("axfr-collector", name))
                .unwrap()
                .unwrap();
            assert_eq!(
                (zone.serial, zone.messages),
                (Some(2026120201), 3),
                "{name}"
            );
            assert_eq!(zone.rrsets.len(), 4, "{name}");
        }
        let zone = axfr_collector(&seed("axfr-collector", "one-message-zone")).unwrap();
        assert_eq!(zone.unwrap().messages, 1);
        for name in [
            "signed-last-message-unsigned",
            "signed-refused-second-message",
            "badsig-first-message",
        ] {
            assert!(
                axfr_collector(&seed("axfr-collector", name)).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_stream_seeds_are_judged_like_the_peers_they_stand_for() {
        use crate::probe::ProbeStatus::{NotXmpp, Xmpp};
        let prosody = xmpp_stream(&seed("xmpp-stream", "prosody-starttls"));
        assert!(prosody.is_ready() && prosody.starttls);
        let error = xmpp_stream(&seed("xmpp-stream", "stream-error-host-unknown"));
        assert_eq!(error.stream_error.as_deref(), Some("host-unknown"));
        for (name, status) in [
            ("empty-features-double-quotes", Xmpp),
            ("header-then-close", Xmpp),
            ("http-garbage", NotXmpp),
            ("tls-bytes-garbage", NotXmpp),
        ] {
            assert_eq!(
                xmpp_stream(&seed("xmpp-stream", name)).status,
                status,
                "{name}"
            );
        }
    }
}
