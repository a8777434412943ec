#!/bin/sh
# Coverage-guided fuzzing of one reader of untrusted input with AFL++ (stable Rust: cargo-fuzz
# needs nightly). Usage: bench/fuzz.sh TARGET SECONDS
#   TARGET: dns-message tsig-reply tsig-stream zonefile topology plan-file journal powerdns-json
#           axfr-collector xmpp-stream
# Needs `cargo install cargo-afl` (it builds AFL++ on first use: `cargo afl config --build`).
# Seeds come from fuzz/seeds/TARGET; every crash or hang found is copied to
# fuzz/regressions/TARGET/, which `cargo test --test fuzz_regressions` replays: commit them.
set -eu
target=${1:?usage: bench/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: bench/fuzz.sh TARGET SECONDS}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$root/fuzz/seeds/$target" ] || { echo "unknown target $target; see fuzz/seeds/" >&2; exit 1; }
cd "$root/fuzz"
nice -n 10 cargo afl build --release --quiet
out="$root/target/fuzz/$target"
rm -rf "$out"
mkdir -p "$out"
AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
XMPPDNS_FUZZ_TARGET="$target" \
    nice -n 10 cargo afl fuzz -V "$seconds" -i "$root/fuzz/seeds/$target" -o "$out" \
    target/release/xmppdns-fuzz > "$out/afl.log" 2>&1 || true
stats="$out/default/fuzzer_stats"
[ -f "$stats" ] || { echo "AFL++ did not start; see $out/afl.log" >&2; tail -20 "$out/afl.log" >&2; exit 1; }
found=0
for kind in crashes hangs; do
    for input in "$out/default/$kind"/id:*; do
        [ -e "$input" ] || continue
        cp "$input" "$root/fuzz/regressions/$target/$kind-$(sha256sum "$input" | cut -c1-16)"
        found=$((found + 1))
    done
done
execs=$(awk -F' *: *' '$1 == "execs_done" {print $2}' "$stats")
paths=$(awk -F' *: *' '$1 == "corpus_count" {print $2}' "$stats")
echo "$target: $seconds s, $execs executions, corpus $paths, $found crash/hang input(s) copied to fuzz/regressions/$target/"
