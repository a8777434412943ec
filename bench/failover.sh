#!/usr/bin/env bash
# Failover benchmark: time from command start until every authoritative server (a BIND primary
# and a Knot secondary on 127.0.0.1, NOTIFY + IXFR) serves the new federation A and SRV records,
# with the port-5269 probe against Prosody included. Needs the packages .ci/run installs.
#
# Prints a second column, the servers' own floor: the same change by nsupdate, until every
# server serves it (both watched from outside the same way), and the ratio of the medians.
#
# Usage: bash bench/failover.sh [ROUNDS]        (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench failover -- "${1:-15}"
