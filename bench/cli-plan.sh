#!/usr/bin/env bash
# CLI benchmark: generates, under <target dir>/bench/, a topology with 10,000 SIP domains x 4
# Edge pools and a zone file of ~40,000 records (every domain's SRV RRset with the 3 old pools at
# old priorities, so each one is a real update, plus 5,000 unrelated A and 5,000 TXT records),
# then runs the release binary's `plan` (table: a summary by zone and action at this size; JSON;
# and `--all`, every row) under /usr/bin/time -v and prints the
# wall time and peak RSS of each. Not a test: nothing is asserted beyond the exit codes.
#
# Usage: bash bench/cli-plan.sh [DOMAINS]        (default 10000)
# XMPPDNS_BIN=path measures another build of xmppdns (say, one from before a change).
set -euo pipefail
cd "$(dirname "$0")/.."

domains=${1:-10000}
zone=example.com
if [ ! -x /usr/bin/time ]; then
  echo "cli-plan.sh: /usr/bin/time is missing (apt-get install time)" >&2
  exit 1
fi

cargo build --release --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${XMPPDNS_BIN:-$target_dir/release/xmppdns} # XMPPDNS_BIN: another build to compare
out="$target_dir/bench"
mkdir -p "$out/zones"

# Topology: one zone, $domains SIP domains inside it, 4 pools with IPv4 and IPv6.
awk -v n="$domains" -v zone="$zone" 'BEGIN {
  printf "{\n  \"zones\": [\"%s\"],\n  \"sip_domains\": [", zone
  for (i = 0; i < n; i++) printf "%s\"sip%05d.%s\"", (i ? ", " : ""), i, zone
  printf "],\n  \"active_pool\": \"EdgePool1\",\n"
  printf "  \"federation\": { \"name\": \"xmpp.%s\", \"ttl\": 300 },\n  \"pools\": [\n", zone
  for (p = 1; p <= 4; p++)
    printf "    { \"name\": \"EdgePool%d\", \"site\": \"Site%d\", \"fqdn\": \"edgepool%d.%s\", \"ipv4\": [\"192.0.2.%d\"], \"ipv6\": [\"2001:db8:%d::10\"] }%s\n",
      p, p, p, zone, 9 + p, p, (p < 4 ? "," : "")
  printf "  ],\n  \"ttl\": 3600,\n  \"manage_target_addresses\": true,\n"
  printf "  \"provider\": { \"kind\": \"zonefile\", \"directory\": \"zones\" }\n}\n"
}' >"$out/topology.json"

# Zone: what a deployment with 3 pools and old priorities looks like, plus unrelated records.
awk -v n="$domains" -v zone="$zone" 'BEGIN {
  printf "$ORIGIN %s.\n$TTL 3600\n", zone
  printf "@ IN SOA ns1.%s. hostmaster.%s. ( 2026010101 7200 3600 1209600 300 )\n", zone, zone
  printf "  IN NS ns1\nns1 IN A 192.0.2.53\nxmpp 86400 IN A 192.0.2.10\n"
  for (p = 1; p <= 3; p++) printf "edgepool%d IN A 192.0.2.%d\n", p, 9 + p
  for (i = 0; i < n; i++) {
    for (p = 1; p <= 3; p++)
      printf "_xmpp-server._tcp.sip%05d IN SRV %d 0 5269 edgepool%d.%s.\n", i, p - 1, p, zone
  }
  for (i = 0; i < n / 2; i++) {
    printf "host%05d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
    printf "host%05d IN TXT \"owner=team-%d; note=unrelated\"\n", i, i % 97
  }
}' >"$out/zones/$zone.zone"

records=$(grep -c ' IN ' "$out/zones/$zone.zone")
echo "topology: $out/topology.json ($domains SIP domains x 4 pools)"
echo "zone:     $out/zones/$zone.zone ($records records)"

# Runs `xmppdns plan` with the given extra arguments and prints wall time and peak RSS.
measure() {
  local label=$1
  shift
  local stats="$out/time-$label.txt"
  local status=0
  NO_COLOR=1 /usr/bin/time -v -o "$stats" "$bin" plan "$out/topology.json" "$@" \
    >"$out/plan-$label.out" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "plan ($label) exited $status" >&2
    cat "$stats" >&2
    exit 1
  fi
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$stats")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$stats")
  printf '%-6s wall %s  peak RSS %s kB (%s MB)  output %s bytes\n' \
    "$label" "$wall" "$rss" "$((rss / 1024))" "$(wc -c <"$out/plan-$label.out")"
}

measure table
measure json --format json
measure all --all
