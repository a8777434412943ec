//! The AFL++ harness: one binary for every target, the target named by `XMPPDNS_FUZZ_TARGET`
//! (see `xmppdns::fuzzing::TARGETS`); `bench/fuzz.sh TARGET SECONDS` runs it.

fn main() {
    let target = std::env::var("XMPPDNS_FUZZ_TARGET").unwrap_or_default();
    assert!(
        xmppdns::fuzzing::TARGETS.contains(&target.as_str()),
        "XMPPDNS_FUZZ_TARGET must be one of {:?}",
        xmppdns::fuzzing::TARGETS
    );
    afl::fuzz!(|data: &[u8]| {
        xmppdns::fuzzing::run(&target, data);
    });
}
