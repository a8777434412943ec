//! `srv` (port, weight, priority step) and `xmpps` (the XEP-0368 `_xmpps-server._tcp` port).

use super::Problems;
use crate::topology::raw::{RawSrv, RawXmpps};
use crate::topology::{SrvSettings, DEFAULT_PRIORITY_STEP, XMPP_SERVER_PORT};

/// The SRV settings; `pool_count` pools must fit their priorities under 65536. Out-of-range
/// values leave placeholders (the topology is then rejected as a whole).
pub(super) fn validate(raw: &RawSrv, pool_count: usize, problems: &mut Problems) -> SrvSettings {
    // A port other than 5269 is allowed (labs, tests); `Topology::warnings` says so.
    let port = raw
        .port
        .map(|p| problems.ranged("srv.port", p, 1, 65535).unwrap_or(0) as u16)
        .unwrap_or(XMPP_SERVER_PORT);
    let weight = raw
        .weight
        .map(|w| problems.ranged("srv.weight", w, 0, 65535).unwrap_or(0) as u16)
        .unwrap_or(0);
    let priority_step = raw
        .priority_step
        .map(|s| {
            problems
                .ranged("srv.priority_step", s, 1, 65535)
                .unwrap_or(1) as u16
        })
        .unwrap_or(DEFAULT_PRIORITY_STEP);
    let highest = u64::from(priority_step) * pool_count as u64;
    if highest > 65535 {
        problems.add(
            "srv.priority_step",
            format!(
                "priorities out of range: {pool_count} pools with step {priority_step} need priority {highest}, above 65535"
            ),
        );
    }
    SrvSettings {
        port,
        weight,
        priority_step,
    }
}

/// The direct-TLS port, when `_xmpps-server._tcp` is published: required, and never the
/// STARTTLS `srv_port`.
pub(super) fn xmpps_port(raw: &RawXmpps, srv_port: u16, problems: &mut Problems) -> Option<u16> {
    if !raw.publish {
        return None;
    }
    let Some(p) = raw.port else {
        problems.add(
            "xmpps.port",
            "publishing `_xmpps-server._tcp` needs its direct-TLS port (e.g. 5270)",
        );
        return None;
    };
    let p = problems.ranged("xmpps.port", p, 1, 65535).map(|p| p as u16);
    if p == Some(srv_port) {
        problems.add(
            "xmpps.port",
            format!("`_xmpps-server._tcp` must not use {srv_port}, the STARTTLS port (XEP-0368)"),
        );
    }
    p
}
