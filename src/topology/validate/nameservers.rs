//! `nameservers` (and every other server address a topology gives): `ADDR` or `ADDR:PORT`.

use std::net::{IpAddr, SocketAddr};

use super::Problems;

pub(super) fn validate(raw: &[String], problems: &mut Problems) -> Vec<SocketAddr> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, text)| parse_server(problems, &format!("nameservers[{i}]"), text))
        .collect()
}

/// `ADDR` or `ADDR:PORT` (IPv6 as `[::1]:53`); port 53 by default.
pub(super) fn parse_server(problems: &mut Problems, at: &str, text: &str) -> Option<SocketAddr> {
    match server_address(text) {
        Ok(addr) => Some(addr),
        Err(message) => {
            problems.add(at, message);
            None
        }
    }
}

/// A DNS server's address: `ADDR` (port 53) or `ADDR:PORT` (`[V6]:PORT` for IPv6).
pub fn server_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{text}` is not an address (ADDR or ADDR:PORT, e.g. 192.0.2.53:53)"
    ))
}
