#!/usr/bin/env bash
# xmppdns against octoDNS: the same RFC 2136 change into real BIND, timed side by side.
#
# Starts BIND 9 (named -g) on 127.0.0.1 at a free high port in a temporary directory, with a
# TSIG key (hmac-sha256) allowed to update and transfer, and a statistics channel. Then, from the
# same starting zone (no SRV record; restarted from the same zone file before each run), it runs:
#   - xmppdns (release build): `apply topology.json --yes`, i.e. read (signed AXFR), plan,
#     apply (signed, prerequisite-guarded UPDATEs), read back;
#   - octoDNS 1.22 + octodns-bind (in a venv under target/, created if missing): `octodns-sync
#     --doit` from a YAML zone holding the same records, i.e. read (signed AXFR), plan, apply.
# Both create the same DOMAINS SRV RRsets (3 records each: 3 Edge pools) in ONE zone. After each
# run a signed AXFR (dig) must show exactly the expected records, or the script fails.
#
# Printed per tool: wall time, CPU time and peak RSS (/usr/bin/time -v; the tool's process only,
# not BIND's work, which is in the wall time; BIND's own CPU time during the run is printed
# too, from /proc), and the UPDATE messages BIND
# received (its statistics channel, read before and after: opcode UPDATE, nsstats UpdateDone),
# then the ratios and the fewest messages that can carry the change. Not run by .ci/run (needs
# PyPI the first time, and takes a while).
#
# Usage: bash bench/octodns-compare.sh [DOMAINS] [RUNS]      (defaults: 2000 domains, 3 runs)
#        KEEP=1 keeps the work directory (configs, outputs, AXFR dumps, BIND log).
# XMPPDNS_BIN=path measures another build of xmppdns (say, one from before a change).
set -euo pipefail
cd "$(dirname "$0")/.."

domains=${1:-2000}
runs=${2:-3}
zone=example.test
tool_timeout=900 # seconds, per tool run

die() {
  echo "octodns-compare.sh: $*" >&2
  exit 1
}

for program in named tsig-keygen dig curl python3 timeout; do
  command -v "$program" >/dev/null || die "$program is missing (apt-get install bind9 bind9-utils bind9-dnsutils curl python3 python3-venv coreutils)"
done
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    die "/usr/bin/time is missing (apt-get install time)"
  fi
fi

cargo build --release --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${XMPPDNS_BIN:-$target_dir/release/xmppdns} # XMPPDNS_BIN: another build to compare

venv="$target_dir/octodns-venv"
if [ ! -x "$venv/bin/octodns-sync" ]; then
  echo "creating $venv (octoDNS from PyPI) ..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/octodns/requirements.txt
fi
py="$venv/bin/python"
helper=bench/octodns/helper.py

work=$(mktemp -d "${TMPDIR:-/tmp}/xmppdns-octodns.XXXXXX")
named_pid=
stop_bind() {
  [ -n "$named_pid" ] || return 0
  kill "$named_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$named_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$named_pid" 2>/dev/null || true
  wait "$named_pid" 2>/dev/null || true
  named_pid=
}
cleanup() {
  local status=$?
  stop_bind
  if [ "$status" -ne 0 ] && [ -f "$work/named.log" ]; then
    echo "--- last lines of named.log:" >&2
    tail -n 20 "$work/named.log" >&2
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port on 127.0.0.1 free for TCP and UDP now (BIND may still lose a race: it then exits and
# the readiness check below fails loudly).
free_port() {
  "$py" -c '
import socket
for _ in range(100):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port); break
else:
    raise SystemExit("no free port")'
}
port=$(free_port)
stats_port=$(free_port)
[ "$port" != "$stats_port" ] || die "got the same port twice"

# Inputs of both tools, from one list of records.
"$py" "$helper" generate "$work" "$domains" "$port"
tsig-keygen -a hmac-sha256 bench-key >"$work/key.conf"
secret=$(sed -n 's/.*secret "\([^"]*\)".*/\1/p' "$work/key.conf")
[ -n "$secret" ] || die "no secret in $work/key.conf"
"$py" "$helper" expected "$domains" >"$work/expected.txt"

mkdir "$work/bind"
cat >"$work/bind/named.conf" <<EOF
include "$work/key.conf";
options {
  directory "$work/bind"; pid-file "$work/bind/named.pid"; session-keyfile "$work/bind/session.key";
  listen-on port $port { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; dnssec-validation no; notify no;
};
controls { };
statistics-channels { inet 127.0.0.1 port $stats_port allow { 127.0.0.1; }; };
zone "$zone" { type primary; file "$zone.db";
  allow-update { key "bench-key"; }; allow-transfer { key "bench-key"; }; };
EOF

# Signed AXFR of the zone into $1 (dig's output); fails unless it is complete (two SOAs).
axfr() {
  dig +noall +answer +time=10 +tries=1 -k "$work/key.conf" -p "$port" @127.0.0.1 "$zone" AXFR \
    >"$1" 2>&1 && [ "$(grep -c "IN[[:space:]]SOA" "$1")" = 2 ]
}

# Starts BIND on a fresh copy of the starting zone (no journal): every run begins alike. Ready
# when a signed AXFR works: for a moment after it answers queries, BIND 9.18 can still answer
# an AXFR with SERVFAIL.
start_bind() {
  rm -f "$work/bind/$zone.db" "$work/bind/$zone.db.jnl"
  cp "$work/$zone.db" "$work/bind/$zone.db"
  named -g -c "$work/bind/named.conf" >"$work/named.log" 2>&1 &
  named_pid=$!
  for _ in $(seq 100); do
    kill -0 "$named_pid" 2>/dev/null || die "named exited at start"
    if axfr "$work/axfr.raw"; then
      return 0
    fi
    sleep 0.1
  done
  die "named did not serve $zone by AXFR within 10 s: $(head -c 300 "$work/axfr.raw")"
}

# "UPDATE UpdateDone" counters from the statistics channel.
counters() {
  "$py" "$helper" stats "http://127.0.0.1:$stats_port/json/v1/server" | awk '{print $1, $2}'
}

# Signed AXFR of the zone, normalised (no SOA), into $1.
dump_zone() {
  axfr "$work/axfr.raw" || die "AXFR failed or incomplete: $(head -c 300 "$work/axfr.raw")"
  "$py" "$helper" records "$work/axfr.raw" >"$1"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# CPU time named has used so far (user + system, ms), from /proc.
ticks=$(getconf CLK_TCK)
named_cpu_ms() {
  awk -v hz="$ticks" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$named_pid/stat"
}

# One measured run: $1 = label, rest = the command. Sets wall_ms, cpu_ms, bind_ms, rss_kb,
# updates, done_count.
measure() {
  local label=$1
  shift
  start_bind
  dump_zone "$work/before-$label.txt"
  if grep -q " IN SRV " "$work/before-$label.txt"; then
    die "$label: the zone holds SRV records before the run"
  fi
  local before after status=0 started bind_before
  before=$(counters)
  bind_before=$(named_cpu_ms)
  started=$(now_ms)
  # timeout inside: a hung tool is the one killed (time's figures include timeout's child).
  /usr/bin/time -v -o "$work/time-$label.txt" timeout -k 5 "$tool_timeout" "$@" \
    >"$work/$label.out" 2>&1 || status=$?
  wall_ms=$(($(now_ms) - started))
  if [ "$status" -ne 0 ]; then
    echo "$label exited $status; its output ends with:" >&2
    tail -n 30 "$work/$label.out" >&2
    exit 1
  fi
  bind_ms=$(($(named_cpu_ms) - bind_before))
  after=$(counters)
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-$label.txt")
  cpu_ms=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%d", s * 1000 }' \
    "$work/time-$label.txt")
  updates=$(($(echo "$after" | cut -d' ' -f1) - $(echo "$before" | cut -d' ' -f1)))
  done_count=$(($(echo "$after" | cut -d' ' -f2) - $(echo "$before" | cut -d' ' -f2)))
  dump_zone "$work/after-$label.txt"
  stop_bind
  if ! diff -q "$work/expected.txt" "$work/after-$label.txt" >/dev/null; then
    echo "$label: the zone BIND serves is not the expected one:" >&2
    diff "$work/expected.txt" "$work/after-$label.txt" | head -n 20 >&2
    exit 1
  fi
}

sizes=$("$py" "$helper" sizes "$domains")
size() { echo "$sizes" | sed -n "s/^$1=//p"; }
batch=$(size octodns_per_message)

echo "BIND $(named -v | awk '{print $2}') on 127.0.0.1:$port; zone $zone; $domains SIP domains x 3 pools" \
  "= $domains SRV RRsets, $((domains * 3)) records; $runs run(s) each, alternating"
echo "xmppdns: $bin; octoDNS: $("$venv/bin/pip" show octodns 2>/dev/null | sed -n 's/^Version: //p')," \
  "octodns-bind $("$venv/bin/pip" show octodns-bind 2>/dev/null | sed -n 's/^Version: //p')" \
  "(update_batch_size $batch: the most creates that fit in one message)"

export BENCH_OCTODNS_DIR="$work/octodns-config" BENCH_PORT="$port" BENCH_KEY_SECRET="$secret" \
  BENCH_OCTODNS_BATCH="$batch"
xmpp_walls=() octo_walls=() xmpp_rss=() octo_rss=() xmpp_cpu=() octo_cpu=()
xmpp_updates=() octo_updates=() xmpp_done=() octo_done=() xmpp_bind=() octo_bind=()
for run in $(seq "$runs"); do
  # Every run begins alike, for xmppdns too: without this, each apply also reads the journal
  # of the runs before it (2,000 changes each), which is not the change being compared.
  rm -f "$work/topology.journal.jsonl"
  measure xmppdns env NO_COLOR=1 "$bin" apply "$work/topology.json" --yes
  xmpp_walls+=("$wall_ms") xmpp_rss+=("$rss_kb") xmpp_cpu+=("$cpu_ms") xmpp_bind+=("$bind_ms")
  xmpp_updates+=("$updates") xmpp_done+=("$done_count")
  xmpp_claim=$(grep -o '[0-9]* UPDATE message(s)' "$work/xmppdns.out" | head -n 1 || true)
  printf 'run %d  xmppdns  wall %6d ms  CPU %6d ms  peak RSS %7d kB  BIND CPU %5d ms  UPDATEs received %d (applied %d; xmppdns says "%s")\n' \
    "$run" "$wall_ms" "$cpu_ms" "$rss_kb" "$bind_ms" "$updates" "$done_count" "$xmpp_claim"

  measure octodns "$venv/bin/octodns-sync" --config-file bench/octodns/config.yaml --doit
  octo_walls+=("$wall_ms") octo_rss+=("$rss_kb") octo_cpu+=("$cpu_ms") octo_bind+=("$bind_ms")
  octo_updates+=("$updates") octo_done+=("$done_count")
  printf 'run %d  octoDNS  wall %6d ms  CPU %6d ms  peak RSS %7d kB  BIND CPU %5d ms  UPDATEs received %d (applied %d)\n' \
    "$run" "$wall_ms" "$cpu_ms" "$rss_kb" "$bind_ms" "$updates" "$done_count"
done

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
xw=$(median "${xmpp_walls[@]}") ow=$(median "${octo_walls[@]}")
xr=$(median "${xmpp_rss[@]}") or=$(median "${octo_rss[@]}")
xc=$(median "${xmpp_cpu[@]}") oc=$(median "${octo_cpu[@]}")
xb=$(median "${xmpp_bind[@]}") ob=$(median "${octo_bind[@]}")
# The distinct values, e.g. "5" or "5 6" when runs differed.
distinct() { printf '%s\n' "$@" | sort -nu | paste -sd' '; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "n/a " }'; }

echo
echo "Every run of both tools left BIND serving the same $((domains * 3)) SRV records (signed AXFR, checked)."
printf '%-30s %12s %12s %10s\n' "median of $runs run(s)" xmppdns octoDNS ratio
printf '%-30s %12s %12s %10s\n' "wall time (ms)" "$xw" "$ow" "$(ratio "$ow" "$xw")x faster"
printf '%-30s %12s %12s %10s\n' "CPU time, user+sys (ms)" "$xc" "$oc" "$(ratio "$oc" "$xc")x less"
printf '%-30s %12s %12s\n' "BIND's CPU meanwhile (ms)" "$xb" "$ob"
printf '%-30s %12s %12s %10s\n' "peak RSS (kB)" "$xr" "$or" "1/$(ratio "$or" "$xr")"
printf '%-30s %12s %12s\n' "UPDATE messages (BIND counted)" "$(distinct "${xmpp_updates[@]}")" \
  "$(distinct "${octo_updates[@]}")"
printf '%-30s %12s %12s\n' "fewest possible for that form" "$(size xmppdns_minimum)" "$(size octodns_minimum)"
echo "(fewest possible: creates per 65,535-byte message, encoded with name compression and TSIG:" \
  "$(size xmppdns_per_message) with xmppdns's 'RRset does not exist' prerequisites, $batch without;" \
  "the naive bound, the whole change as one message / 65,535, gives $(size xmppdns_naive_minimum)" \
  "and $(size octodns_naive_minimum): compression pointers reach only a message's first 16 KiB)"
if [ "${xmpp_done[*]}" != "${xmpp_updates[*]}" ] || [ "${octo_done[*]}" != "${octo_updates[*]}" ]; then
  echo "note: not every UPDATE received was applied (UpdateDone ${xmpp_done[*]} / ${octo_done[*]})"
fi
