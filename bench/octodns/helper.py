#!/usr/bin/env python3
"""Helper of bench/octodns-compare.sh (runs in the octoDNS venv: needs dnspython and PyYAML).

  helper.py generate DIR DOMAINS PORT    writes into DIR the inputs of both tools for the same
                                         change: the starting zone file, the xmppdns topology and
                                         the octoDNS YAML zone; all from one list of RRsets
  helper.py sizes DOMAINS                prints, for the UPDATE content each tool sends (xmppdns:
                                         a prerequisite per RRset; octoDNS: none), how many creates
                                         fit in one 65,535-byte message and so the fewest messages
                                         for the change (encoded with dnspython, TSIG included)
  helper.py stats URL                    prints "UPDATE UpdateDone ReqTCP" from BIND's
                                         statistics channel (/json/v1/server)
  helper.py records AXFR_FILE            normalises `dig AXFR` output: one record a line,
                                         sorted, SOA and TSIG left out
  helper.py expected DOMAINS             what `records` must print after the change
"""

import json
import math
import sys
import urllib.request
from pathlib import Path

ZONE = "example.test"
TTL = 3600  # xmppdns's default SRV TTL
FEDERATION_TTL = 300  # xmppdns's default federation A TTL
POOLS = 3
PORT = 5269
KEY_NAME = "bench-key"
MAX_MESSAGE = 65535


def domains(n):
    return [f"d{i:04d}.{ZONE}" for i in range(1, n + 1)]


def srv_owner(domain):
    return f"_xmpp-server._tcp.{domain}"


def srv_values():
    """What xmppdns computes for 3 pools, EdgePool1 active: priorities 10, 20, 30; weight 0."""
    return [(10 * p, 0, PORT, f"edgepool{p}.{ZONE}.") for p in range(1, POOLS + 1)]


def static_records():
    """Everything both tools find in the zone and must leave alone: no SRV record. The
    federation A record already holds what xmppdns wants, so its plan is exactly the SRV
    creates, like octoDNS's."""
    return [
        ("@", TTL, "NS", f"ns1.{ZONE}."),
        ("ns1", TTL, "A", "192.0.2.53"),
        ("xmpp", FEDERATION_TTL, "A", "192.0.2.1"),
    ] + [(f"edgepool{p}", TTL, "A", f"192.0.2.{p}") for p in range(1, POOLS + 1)]


def generate(out, n, server_port):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    static = static_records()
    zone = [
        f"$ORIGIN {ZONE}.",
        f"$TTL {TTL}",
        f"@ {TTL} IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( 1 3600 600 604800 300 )",
    ]
    zone += [f"{name} {ttl} IN {rtype} {value}" for name, ttl, rtype, value in static]
    (out / f"{ZONE}.db").write_text("\n".join(zone) + "\n")

    topology = {
        "zones": [ZONE],
        "sip_domains": domains(n),
        "active_pool": "EdgePool1",
        "federation": {"name": f"xmpp.{ZONE}", "ttl": FEDERATION_TTL},
        "pools": [
            {
                "name": f"EdgePool{p}",
                "site": f"Site{p}",
                "fqdn": f"edgepool{p}.{ZONE}",
                "ipv4": [f"192.0.2.{p}"],
            }
            for p in range(1, POOLS + 1)
        ],
        "ttl": TTL,
        "srv": {"port": PORT, "weight": 0, "priority_step": 10},
        "provider": {
            "kind": "rfc2136",
            "server": f"127.0.0.1:{server_port}",
            "key_file": "key.conf",
            "timeout_ms": 10000,
            "attempts": 1,
        },
    }
    (out / "topology.json").write_text(json.dumps(topology, indent=1) + "\n")

    # octoDNS manages the whole zone: its source holds the same static records (so it changes
    # none of them) plus the same SRV RRsets.
    records = {}
    for name, ttl, rtype, value in static:
        records[name if name != "@" else ""] = {"type": rtype, "ttl": ttl, "value": value}
    for domain in domains(n):
        name = srv_owner(domain)[: -len(ZONE) - 1]
        records[name] = {
            "type": "SRV",
            "ttl": TTL,
            "values": [
                {"priority": p, "weight": w, "port": port, "target": target}
                for p, w, port, target in srv_values()
            ],
        }
    import yaml

    octo = out / "octodns-config"
    octo.mkdir(exist_ok=True)
    (octo / f"{ZONE}.yaml").write_text(yaml.safe_dump(records, sort_keys=True))


def update_size(n, prerequisites, key):
    """Bytes of one UPDATE carrying the first `n` SRV creates (TSIG hmac-sha256 included)."""
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.renderer
    import dns.rrset
    import dns.tsig

    origin = dns.name.from_text(ZONE)
    r = dns.renderer.Renderer(id=1, flags=0x2800, max_size=1 << 30)
    r.add_question(origin, dns.rdatatype.SOA)
    owners = [dns.name.from_text(srv_owner(d)) for d in domains(n)]
    if prerequisites:
        # "RRset does not exist" (RFC 2136 §2.4.3): class NONE, TTL 0, no rdata.
        for owner in owners:
            empty = dns.rrset.RRset(owner, dns.rdataclass.NONE, dns.rdatatype.SRV)
            r.add_rrset(dns.renderer.ANSWER, empty)
    for owner in owners:
        rrset = dns.rrset.from_text_list(
            owner,
            TTL,
            "IN",
            "SRV",
            [f"{p} {w} {port} {target}" for p, w, port, target in srv_values()],
        )
        r.add_rrset(dns.renderer.AUTHORITY, rrset)
    r.write_header()
    r.add_tsig(
        dns.name.from_text(KEY_NAME),
        key,
        300,
        1,
        0,
        b"",
        b"",
        dns.tsig.HMAC_SHA256,
    )
    return len(r.get_wire())


def per_message(n, prerequisites, key):
    """The most SRV creates one UPDATE of at most 65,535 bytes can carry (every create is the
    same size here, so the fewest messages for `n` of them is ceil(n / this))."""
    # At least ~126 bytes a create: no message holds more than 65,535 / 100 of them.
    low, high = 1, min(n, MAX_MESSAGE // 100)
    while low < high:
        mid = (low + high + 1) // 2
        if update_size(mid, prerequisites, key) <= MAX_MESSAGE:
            low = mid
        else:
            high = mid - 1
    return low


def sizes(n):
    key = b"\0" * 32
    for label, prerequisites in (("xmppdns", True), ("octodns", False)):
        fit = per_message(n, prerequisites, key)
        print(f"{label}_per_message={fit}")
        print(f"{label}_minimum={math.ceil(n / fit)}")
        # The naive bound: the whole change as one message, divided by 65,535. It overstates:
        # compression pointers reach only the first 16 KiB of a message, so one giant
        # message compresses worse than several 64 KiB ones.
        total = update_size(n, prerequisites, key)
        print(f"{label}_one_message_bytes={total}")
        print(f"{label}_naive_minimum={math.ceil(total / MAX_MESSAGE)}")


def stats(url):
    with urllib.request.urlopen(url, timeout=5) as reply:
        data = json.load(reply)
    opcodes = data.get("opcodes", {})
    ns = data.get("nsstats", {})
    print(opcodes.get("UPDATE", 0), ns.get("UpdateDone", 0), ns.get("ReqTCP", 0))


def records(path):
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        name, ttl, cls, rtype, *rdata = line.split()
        if rtype in ("SOA", "TSIG"):
            continue
        out.append(" ".join([name.lower(), ttl, cls, rtype, *rdata]))
    print("\n".join(sorted(out)))


def expected(n):
    out = []
    for name, ttl, rtype, value in static_records():
        fqdn = f"{ZONE}." if name == "@" else f"{name}.{ZONE}."
        out.append(f"{fqdn} {ttl} IN {rtype} {value}")
    for domain in domains(n):
        for p, w, port, target in srv_values():
            out.append(f"{srv_owner(domain)}. {TTL} IN SRV {p} {w} {port} {target}")
    print("\n".join(sorted(out)))


def main(argv):
    if len(argv) >= 2 and argv[1] == "generate" and len(argv) == 5:
        generate(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 3 and argv[1] == "sizes":
        sizes(int(argv[2]))
    elif len(argv) == 3 and argv[1] == "stats":
        stats(argv[2])
    elif len(argv) == 3 and argv[1] == "expected":
        expected(int(argv[2]))
    elif len(argv) == 3 and argv[1] == "records":
        records(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
