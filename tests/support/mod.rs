//! Test support: REAL servers (BIND 9, Knot 3.2, PowerDNS, Prosody) started per test on 127.0.0.1.
//!
//! Use from an integration test with `mod support;`. Every server:
//! - listens on 127.0.0.1 only, on a free high port picked at runtime (never shared between the
//!   tests of one process; a server that still fails to bind is restarted on new ports, a bounded
//!   number of times),
//! - lives in its own `tempfile::TempDir` (config, zone files, logs, databases),
//! - runs as a foreground child process (no systemd, no daemonizing) and is stopped in `Drop`
//!   (SIGTERM, bounded wait, SIGKILL, reaped), after which its directory is removed,
//! - is only returned once it really answers (a matching SOA serial, an HTTP 200, XMPP stream
//!   features), within `XMPPDNS_TEST_READY_SECS` (default 10 s); otherwise the test panics with
//!   the tail of the server's own log.
//!
//! A missing program makes the test fail with the Debian package to `apt-get install`.
//! Configurations follow docs/test-servers.md (shared docs), with the differences noted in each
//! module.

// Each test binary uses a subset of this module and of its re-exports.
#![allow(dead_code, unused_imports)]

pub mod azure;
pub mod bind;
pub mod certs;
pub mod dns;
pub mod http;
pub mod kdc;
pub mod knot;
pub mod moto;
pub mod pdns;
pub mod process;
pub mod prometheus;
pub mod prosody;
pub mod relay;
pub mod samba;
pub mod tools;
pub mod tsig;

pub use bind::{bind_with_knot_secondary, Bind};
pub use dns::{
    axfr, dig, nsupdate, query, soa_serial, soa_serial_in_zone_text, try_axfr, try_dig,
    try_nsupdate, try_soa_serial, wait_for, wait_for_rdata, wait_for_serial, zone_text, DnsReply,
};
pub use http::{http_request, HttpResponse};
pub use knot::{knot_with_knot_secondary, Knot};
pub use pdns::PowerDns;
pub use process::{free_port, ready_timeout, PortClash, ServerProcess, Transport, LOOPBACK};
pub use prosody::{http_error_listener, xmpp_stream_features, Prosody};
pub use tools::{
    debian_package, find_program, missing_program_message, require, run, xmppdns,
    xmppdns_with_resolv_conf, Ran,
};
pub use tsig::{TsigKey, TSIG_ALGORITHMS};
