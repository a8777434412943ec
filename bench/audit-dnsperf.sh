#!/usr/bin/env bash
# Audit benchmark: serves N SIP domains (default 10,000; each its own zone, as at a hosting
# provider, every one fully correct) from BIND on 127.0.0.1 at a free high port in a temporary
# directory, runs the release binary's `audit` over all of them, and reports its wall time and
# queries per second beside dnsperf's lossless query rate on the same server, with the same
# query mix, in the same run. Every zone is correct, so every finding would be a false one.
#
# "Lossless rate": dnsperf unthrottled first; while it loses queries, it is re-run limited to
# 90% of the rate it reached (at most 6 times). The ratio to the first, unthrottled run is
# printed too, and so is the rate of the audit's query engine alone on dnsperf's own query
# file (examples/query_file.rs): the same questions without the audit's work around them.
# XMPPDNS_BIN=path runs another build; AUDIT_ARGS adds audit options (say,
# "--concurrency 200", dnsperf's outstanding queries). Not a test: CI does not run it.
#
# Usage: bash bench/audit-dnsperf.sh [DOMAINS]     (needs named, dnsperf, jq; as root or a user
#        that may run named)
set -euo pipefail
cd "$(dirname "$0")/.."

domains=${1:-10000}
seconds=${DNSPERF_SECONDS:-10}
for tool in named dnsperf jq dig; do
  if ! command -v "$tool" >/dev/null; then
    echo "audit-dnsperf.sh: $tool is missing (apt-get install bind9 dnsperf jq bind9-dnsutils)" >&2
    exit 1
  fi
done

cargo build --release --quiet --bin xmppdns --example query_file
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${XMPPDNS_BIN:-$target_dir/release/xmppdns} # XMPPDNS_BIN: another build to compare

dir=$(mktemp -d /tmp/xmppdns-bench.XXXXXX)
named_pid=
cleanup() {
  if [ -n "$named_pid" ]; then
    kill "$named_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$named_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$named_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# A free port: ask the kernel for one (TCP and UDP both checked by named at start).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Zones d00000.test ... : two Edge pools inside each zone, federation A on the active one.
mkdir -p "$dir/zones"
awk -v n="$domains" -v dir="$dir/zones" 'BEGIN {
  for (i = 0; i < n; i++) {
    z = sprintf("d%05d.test", i)
    f = dir "/" z
    printf "$ORIGIN %s.\n$TTL 3600\n@ IN SOA ns1 hostmaster ( 1 3600 600 86400 300 )\n@ IN NS ns1\nns1 IN A 127.0.0.1\n", z > f
    printf "_xmpp-server._tcp IN SRV 10 0 5269 edgepool1\n_xmpp-server._tcp IN SRV 20 0 5269 edgepool2\n", z > f
    printf "edgepool1 IN A 192.0.2.10\nedgepool2 IN A 198.51.100.20\nxmpp 300 IN A 192.0.2.10\n" > f
    close(f)
    printf "zone \"%s\" { type primary; file \"zones/%s\"; };\n", z, z > (dir "/../zones.conf")
  }
}'
cat >"$dir/named.conf" <<EOF
options {
  directory "$dir"; pid-file "$dir/named.pid"; session-keyfile "$dir/session.key";
  listen-on port $port { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; dnssec-validation no; notify no;
};
controls { };
include "$dir/zones.conf";
EOF

echo "starting BIND with $domains zones on 127.0.0.1:$port ..."
named -g -c "$dir/named.conf" >"$dir/named.log" 2>&1 &
named_pid=$!
last=$(printf 'd%05d.test' $((domains - 1)))
for _ in $(seq 600); do
  if dig +norec +time=1 +tries=1 -p "$port" @127.0.0.1 "$last" SOA 2>/dev/null | grep -q 'status: NOERROR'; then
    break
  fi
  kill -0 "$named_pid" 2>/dev/null || { tail -20 "$dir/named.log" >&2; exit 1; }
  sleep 0.2
done
dig +norec +short -p "$port" @127.0.0.1 "$last" SOA | grep -q . || { echo "BIND did not load the zones" >&2; exit 1; }

# The audit: every domain on the command line, JSON out.
args=()
for i in $(seq 0 $((domains - 1))); do args+=(--domain "$(printf 'd%05d.test' "$i")"); done
# CPU milliseconds BIND has used so far (user + system), from /proc.
bind_cpu_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$named_pid/stat"
}
# Runs a command with bash's `time`: sets cpu_ms (its user + system CPU) and bind_ms (BIND's
# CPU meanwhile).
with_cpu() {
  local before status TIMEFORMAT='%U %S'
  before=$(bind_cpu_ms)
  { time "$@"; } 2>"$dir/times.txt"
  status=$?
  # The command's own stderr (an audit's warnings) still reaches the terminal.
  head -n -1 "$dir/times.txt" >&2
  cpu_ms=$(tail -1 "$dir/times.txt" | awk '{ printf "%d", ($1 + $2) * 1000 }')
  bind_ms=$(($(bind_cpu_ms) - before))
  return $status
}
audit_once() {
  local start end
  start=$(date +%s.%N)
  set +e
  # shellcheck disable=SC2086 # AUDIT_ARGS: extra audit options, word-split on purpose
  with_cpu "$bin" audit --format json --nameserver "127.0.0.1:$port" ${AUDIT_ARGS:-} "${args[@]}" >"$dir/audit.json"
  code=$?
  set -e
  end=$(date +%s.%N)
  wall=$(echo "$end - $start" | bc -l)
}
# Run twice, the second timed: BIND has just loaded its 10,000 zones, while dnsperf's rate is
# its average over 10 s and the engine below runs after dnsperf. Timing the second run puts the
# audit on a server that has answered before, like theirs. The first run's wall time is printed
# too: over 6 runs of this script the two differed both ways (first 0.73-0.93 s, second
# 0.73-0.85 s), so a cold server is not what limits the audit.
audit_once
cold_wall=$wall
audit_once
audit_cpu="audit ${cpu_ms} ms + BIND ${bind_ms} ms"
findings=$(jq '.summary.errors + .summary.warnings + .summary.info' "$dir/audit.json")
sent=$(jq '.stats.sent' "$dir/audit.json")
questions=$(jq '.stats.questions' "$dir/audit.json")
retries=$(jq '.stats.retries' "$dir/audit.json")
unanswered=$(jq '.stats.unanswered' "$dir/audit.json")
audit_qps=$(echo "$sent / $wall" | bc -l)

# dnsperf on the same server with the audit's query mix (EDNS like the audit).
awk -v n="$domains" 'BEGIN {
  for (i = 0; i < n; i++) {
    z = sprintf("d%05d.test", i)
    print z " SOA"; print "_xmpp-server._tcp." z " SRV"; print "_xmpps-server._tcp." z " SRV"
    print "edgepool1." z " A"; print "edgepool1." z " AAAA"; print "_5269._tcp.edgepool1." z " TLSA"
    print "edgepool2." z " A"; print "edgepool2." z " AAAA"; print "_5269._tcp.edgepool2." z " TLSA"
  }
}' >"$dir/queries.txt"
limit=
dnsperf_qps=
unthrottled_qps=
for attempt in 1 2 3 4 5 6; do
  dnsperf -e -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l "$seconds" -q 200 $limit >"$dir/dnsperf.txt" 2>&1 || true
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' "$dir/dnsperf.txt")
  lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' "$dir/dnsperf.txt")
  echo "dnsperf run $attempt ${limit:-(unlimited)}: $qps q/s, $lost lost"
  [ -n "$limit" ] || unthrottled_qps=$qps
  if [ "${lost:-1}" = 0 ]; then dnsperf_qps=$qps; break; fi
  limit="-Q $(printf '%.0f' "$(echo "$qps * 0.9" | bc -l)")"
done

echo
echo "== audit of $domains SIP domains (each its own zone) against BIND on loopback =="
printf 'audit:   wall %.2f s, %d questions, %d datagrams sent (%d retries, %d unanswered), %.0f queries/s, exit %d\n' \
  "$wall" "$questions" "$sent" "$retries" "$unanswered" "$audit_qps" "$code"
printf 'audit:   the first run, on a server that had just loaded its zones: wall %.2f s, %.0f queries/s\n' \
  "$cold_wall" "$(echo "$sent / $cold_wall" | bc -l)"
printf 'audit:   %d findings (every zone is correct: all of them would be false)\n' "$findings"
if [ -n "$dnsperf_qps" ]; then
  printf 'dnsperf: %.0f queries/s lossless (same mix, EDNS, 200 outstanding, %s s)\n' "$dnsperf_qps" "$seconds"
  printf 'ratio:   audit reaches %.0f%% of dnsperf'"'"'s lossless rate\n' "$(echo "100 * $audit_qps / $dnsperf_qps" | bc -l)"
fi
if [ -n "$unthrottled_qps" ]; then
  printf 'ratio:   audit reaches %.0f%% of dnsperf'"'"'s unthrottled rate (%.0f q/s; target: 85%% with 0 unanswered)\n' \
    "$(echo "100 * $audit_qps / $unthrottled_qps" | bc -l)" "$unthrottled_qps"
fi
# The audit's query engine alone on dnsperf's own query file, right after dnsperf: the same
# questions, without the audit's work around them (snapshot, rules, report).
with_cpu "$target_dir/release/examples/query_file" "127.0.0.1:$port" "$dir/queries.txt" >"$dir/engine.txt"
engine=$(cat "$dir/engine.txt")
engine_cpu="engine ${cpu_ms} ms + BIND ${bind_ms} ms"
# And dnsperf once through the same file (the same 90,000 questions), for its CPU.
with_cpu dnsperf -e -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -n 1 -q 200 -t 1 >"$dir/dnsperf-once.txt" 2>&1 || true
once_lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' "$dir/dnsperf-once.txt")
if [ "${once_lost:-1}" = 0 ]; then
  dnsperf_cpu="dnsperf ${cpu_ms} ms + BIND ${bind_ms} ms"
else
  # dnsperf keeps its CPU busy until a lost query times out: its figure would mostly be that.
  dnsperf_cpu="dnsperf lost ${once_lost:-?} queries in that pass, so its CPU is not comparable"
fi
engine_qps=$(echo "$engine" | sed -n 's/.*s: \([0-9]*\) queries\/s.*/\1/p')
printf 'engine:  %s\n' "$engine"
if [ -n "$unthrottled_qps" ] && [ -n "$engine_qps" ]; then
  printf 'ratio:   the engine alone reaches %.0f%% of dnsperf'"'"'s unthrottled rate on the same questions\n' \
    "$(echo "100 * $engine_qps / $unthrottled_qps" | bc -l)"
fi
printf 'cpu:     the same %d questions: %s; %s; %s\n' "$questions" "$audit_cpu" "$engine_cpu" "$dnsperf_cpu"
if [ -z "$dnsperf_qps" ]; then
  echo "dnsperf: no lossless run found in 6 attempts; see the last output:"
  cat "$dir/dnsperf.txt"
fi
