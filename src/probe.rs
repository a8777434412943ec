//! The port-5269 probe: does an address answer as an XMPP server-to-server endpoint?
//!
//! A TCP connect, then the opening stream header a federating server would send
//! (`jabber:server`, `to` = a SIP domain, version 1.0), then the peer's own stream header and
//! `<stream:features>` are read. This is what Lync/Skype Edge servers and other XMPP servers
//! answer before TLS, so it tells a dead or misrouted pool from a live one without credentials.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

pub mod tls;

/// The namespace every XMPP stream header declares (RFC 6120 §4.8.1).
const STREAMS_NS: &str = "http://etherx.jabber.org/streams";
/// The namespace of `<starttls/>` in stream features (RFC 6120 §5.4.1).
const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// More than any header + features; a peer that sends more without either is not XMPP.
const MAX_READ: usize = 16 * 1024;
/// How many probes run at once in `probe_all`.
const PARALLEL: usize = 32;

/// What an address did with our stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// It sent an XMPP stream header back.
    Xmpp,
    /// It connected but sent something that is not XMPP, or closed without a header.
    NotXmpp,
    /// The connection was refused: nothing listens on the port.
    Closed,
    /// No connection, or no answer, within the time limit.
    Timeout,
    /// No route, network down, or another connect error.
    Unreachable,
}

/// One address's probe result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub address: SocketAddr,
    pub status: ProbeStatus,
    /// The peer offered STARTTLS in its stream features.
    pub starttls: bool,
    /// The `from` of the peer's stream header, when it sent one.
    pub from: Option<String>,
    /// The condition of a `<stream:error>` the peer sent (e.g. `host-unknown`).
    pub stream_error: Option<String>,
    /// Time to establish the TCP connection, when it was established.
    pub connect_ms: Option<u64>,
    /// Time from the start of the probe to its end.
    pub total_ms: u64,
    /// A one-line account for people.
    pub detail: String,
}

impl ProbeResult {
    /// True when the address answered as an XMPP server.
    pub fn is_xmpp(&self) -> bool {
        self.status == ProbeStatus::Xmpp
    }

    /// True when the address answered as XMPP and did not end the stream with an error (such
    /// as `host-unknown`: it does not serve the domain we named), so it can take federation.
    pub fn is_ready(&self) -> bool {
        self.is_xmpp() && self.stream_error.is_none()
    }
}

/// Probes one address; never fails, the result says what happened. Takes at most about
/// `timeout` for the connection plus `timeout` for the answer.
pub fn probe(address: SocketAddr, to_domain: &str, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let mut result = ProbeResult {
        address,
        status: ProbeStatus::Unreachable,
        starttls: false,
        from: None,
        stream_error: None,
        connect_ms: None,
        total_ms: 0,
        detail: String::new(),
    };
    match TcpStream::connect_timeout(&address, timeout) {
        Err(e) => {
            let (status, detail) = match e.kind() {
                ErrorKind::ConnectionRefused => (
                    ProbeStatus::Closed,
                    "connection refused: nothing listens on this port".to_string(),
                ),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => (
                    ProbeStatus::Timeout,
                    format!("no TCP connection within {} ms", timeout.as_millis()),
                ),
                _ => (ProbeStatus::Unreachable, format!("cannot connect: {e}")),
            };
            result.status = status;
            result.detail = detail;
        }
        Ok(stream) => {
            result.connect_ms = Some(millis(start.elapsed()));
            converse(stream, to_domain, timeout, &mut result);
        }
    }
    result.total_ms = millis(start.elapsed());
    result
}

/// Probes every `(address, to_domain)` pair, a bounded number at a time; results in input order.
pub fn probe_all(targets: &[(SocketAddr, String)], timeout: Duration) -> Vec<ProbeResult> {
    let mut results = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(PARALLEL) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(address, domain)| scope.spawn(move || probe(*address, domain, timeout)))
                .collect();
            for handle in handles {
                results.push(handle.join().expect("a probe thread panicked"));
            }
        });
    }
    results
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sends our header and reads until the peer's features, a stream error, the end of its stream,
/// EOF, too much data, or the deadline.
fn converse(mut stream: TcpStream, to_domain: &str, timeout: Duration, result: &mut ProbeResult) {
    let deadline = Instant::now() + timeout;
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='{STREAMS_NS}' to='{}' version='1.0'>",
        escape_attribute(to_domain)
    );
    if let Err(e) = stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(header.as_bytes()))
    {
        result.status = ProbeStatus::NotXmpp;
        result.detail = format!("connected, but sending the stream header failed: {e}");
        return;
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let ending = loop {
        if let Some(enough) = enough_read(&received) {
            break enough;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(format!("no answer within {} ms", timeout.as_millis()));
        }
        if let Err(e) = stream.set_read_timeout(Some(left)) {
            break Err(e.to_string());
        }
        match stream.read(&mut buf) {
            Ok(0) => break Err("the peer closed the connection".to_string()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(format!("no answer within {} ms", timeout.as_millis()));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("reading failed: {e}")),
        }
    };
    // Close our stream politely; the peer may already be gone.
    let _ = stream.write_all(b"</stream:stream>");

    judge(&received, ending, result);
}

/// Whether to stop reading, given all the peer's bytes so far: `Some(Ok(()))` once its answer
/// is complete, `Some(Err(why))` once it sent too much without one, `None` to read on. Pure, so
/// the fuzzing target `xmpp-stream` runs what the probe runs.
pub(crate) fn enough_read(received: &[u8]) -> Option<Result<(), String>> {
    if let Some(done) = Answer::read(received).finished() {
        return Some(Ok(done));
    }
    (received.len() > MAX_READ)
        .then(|| Err("more than 16 KiB without XMPP stream features".to_string()))
}

/// Fills `result` from the peer's bytes and why reading stopped (`ending`).
pub(crate) fn judge(received: &[u8], ending: Result<(), String>, result: &mut ProbeResult) {
    let answer = Answer::read(received);
    result.starttls = answer.starttls;
    result.from = answer.from.clone();
    result.stream_error = answer.stream_error.clone();
    match (answer.header, ending) {
        (true, _) => {
            result.status = ProbeStatus::Xmpp;
            result.detail = answer.describe();
        }
        (false, Err(why)) if received.is_empty() && why.starts_with("no answer") => {
            result.status = ProbeStatus::Timeout;
            result.detail = format!("connected, but {why}");
        }
        (false, Err(why)) if received.is_empty() => {
            result.status = ProbeStatus::NotXmpp;
            result.detail = format!("connected, but {why} without sending anything");
        }
        (false, _) => {
            result.status = ProbeStatus::NotXmpp;
            result.detail = format!(
                "connected, but the answer is not XMPP: \"{}\"",
                printable_prefix(received, 60)
            );
        }
    }
}

/// What was understood of the peer's bytes so far.
#[derive(Debug, Default)]
struct Answer {
    /// A stream header in the streams namespace was seen.
    header: bool,
    features: bool,
    starttls: bool,
    from: Option<String>,
    stream_error: Option<String>,
    closed: bool,
}

impl Answer {
    fn read(bytes: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(bytes);
        let mut answer = Answer::default();
        let Some(header) = stream_header(&text) else {
            return answer;
        };
        answer.header = header.contains(STREAMS_NS);
        if !answer.header {
            return answer;
        }
        answer.from = attribute(header, "from").map(|from| printable(&from));
        answer.features =
            text.contains("</stream:features>") || text.contains("<stream:features/>");
        answer.starttls = text.contains(TLS_NS);
        answer.stream_error = stream_error_condition(&text);
        answer.closed = text.contains("</stream:stream>");
        answer
    }

    /// `Some(())` once nothing more is worth waiting for.
    fn finished(&self) -> Option<()> {
        (self.header && (self.features || self.closed || self.stream_error.is_some())).then_some(())
    }

    fn describe(&self) -> String {
        let mut words = vec!["XMPP answered".to_string()];
        if let Some(from) = &self.from {
            words.push(format!("as {from}"));
        }
        if let Some(error) = &self.stream_error {
            words.push(format!("with stream error <{error}/>"));
        } else if self.starttls {
            words.push("STARTTLS offered".to_string());
        } else if self.features {
            words.push("no STARTTLS offered".to_string());
        } else {
            words.push("no stream features".to_string());
        }
        words.join(", ")
    }
}

/// The text of the first `<…:stream …>` or `<stream …>` start tag, if complete.
fn stream_header(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(offset) = text[from..].find('<') {
        let start = from + offset;
        let rest = &text[start + 1..];
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == "stream" {
            let end = rest.find('>')?;
            return Some(&rest[..end]);
        }
        from = start + 1;
    }
    None
}

/// The value of attribute `name` in a start tag's text (either quote style).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut search = 0;
    while let Some(offset) = tag[search..].find(name) {
        let at = search + offset;
        let before_ok = at == 0 || tag[..at].ends_with(char::is_whitespace);
        let after = tag[at + name.len()..].trim_start();
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                let quote = value.chars().next()?;
                if quote == '\'' || quote == '"' {
                    let body = &value[1..];
                    return body.find(quote).map(|end| body[..end].to_string());
                }
            }
        }
        search = at + name.len();
    }
    None
}

/// The first child element's local name inside `<stream:error>`.
fn stream_error_condition(text: &str) -> Option<String> {
    let start = text.find(":error>").or_else(|| text.find("<error>"))?;
    let rest = &text[start..];
    let child = rest[1..].find('<')? + 1;
    let name: String = rest[child + 1..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
        .collect();
    (!name.is_empty()).then(|| printable(name.rsplit(':').next().unwrap_or(&name)))
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// Up to `max` characters of what a peer sent, with control characters shown as `.`.
fn printable_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(max)
        .map(|c| if is_unsafe(c) { '.' } else { c })
        .collect()
}

/// `text` without the characters that could end a line or a comment, move the cursor or
/// reorder what a terminal, a log or a `.ps1` shows: control characters (C0, DEL, C1), the
/// Unicode line and paragraph separators, and the bidirectional overrides and isolates. Every
/// string a peer or DNS controls goes through this before it is shown or written.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !is_unsafe(*c)).collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSODY: &str = "<?xml version='1.0'?><stream:stream xmlns:db='jabber:server:dialback' \
        xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='contoso.com' \
        id='abc' xml:lang='en' xmlns='jabber:server'><stream:features><dialback \
        xmlns='urn:xmpp:features:dialback'/><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
        <required/></starttls></stream:features>";

    #[test]
    fn reads_a_prosody_answer() {
        let answer = Answer::read(PROSODY.as_bytes());
        assert!(answer.header && answer.features && answer.starttls);
        assert_eq!(answer.from.as_deref(), Some("contoso.com"));
        assert!(answer.finished().is_some());
        assert_eq!(
            answer.describe(),
            "XMPP answered, as contoso.com, STARTTLS offered"
        );
    }

    #[test]
    fn a_header_without_features_is_not_finished() {
        let cut = &PROSODY[..PROSODY.find("<stream:features>").unwrap()];
        let answer = Answer::read(cut.as_bytes());
        assert!(answer.header);
        assert!(answer.finished().is_none());
    }

    #[test]
    fn reads_a_stream_error() {
        let text = "<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" \
            xmlns=\"jabber:server\" version=\"1.0\"><stream:error><host-unknown \
            xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";
        let answer = Answer::read(text.as_bytes());
        assert!(answer.header);
        assert_eq!(answer.stream_error.as_deref(), Some("host-unknown"));
        assert!(answer.describe().contains("stream error <host-unknown/>"));
    }

    #[test]
    fn http_is_not_xmpp() {
        let answer = Answer::read(b"HTTP/1.1 400 Bad Request\r\n\r\n<html><stream>");
        assert!(!answer.header);
        assert!(answer.finished().is_none());
    }

    #[test]
    fn what_the_peer_controls_is_stripped_of_line_breaks_and_controls() {
        let text = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
            from='evil.example\r\nStop-CsWindowsService -ComputerName x\u{2028}\u{202e}\x1b[2J'>\
            <stream:error><bad\nname/></stream:error>";
        let answer = Answer::read(text.as_bytes());
        let from = answer.from.unwrap();
        assert_eq!(from, "evil.exampleStop-CsWindowsService -ComputerName x[2J");
        assert_eq!(answer.stream_error.as_deref(), Some("bad"));
        assert_eq!(printable("a\tb\u{85}c\u{2066}d"), "abcd");
    }

    #[test]
    fn attribute_needs_a_word_boundary() {
        let tag = "stream:stream xmlns:from='x' from=\"a.example\"";
        assert_eq!(attribute(tag, "from").as_deref(), Some("a.example"));
    }
}
