//! Sending messages: UDP for small ones (TCP on truncation), TCP for large ones and
//! transfers; bounded retries with backoff, each retry freshly signed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::dns::tsig::{self, Signed, TsigKey, Verdict, Verifier};
use crate::dns::wire;
use crate::dns::DnsError;

// The clock moved to `crate::clock`; this path stays for callers that reach it through the
// transport they configure.
pub use crate::clock::{system_clock, Clock};

/// Called with each message of a stream and its TSIG verdict; returns true when complete.
pub type OnMessage<'a> = dyn FnMut(&[u8], &Verdict) -> Result<bool, DnsError> + 'a;

/// How to reach one server.
#[derive(Clone)]
pub struct Transport {
    pub server: SocketAddr,
    /// Per attempt; doubled on each retry.
    pub timeout: Duration,
    pub attempts: u32,
    pub clock: Clock,
}

/// A reply and what its TSIG said (always `Verified` when unsigned replies are not allowed).
#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub verdict: Verdict,
}

/// The response code in a reply's header (RFC 1035 / 2136 names).
pub fn rcode(message: &[u8]) -> u8 {
    message.get(3).map(|b| b & 0x0F).unwrap_or(0)
}

pub fn rcode_name(code: u8) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "unknown RCODE",
    }
}

/// A random message ID.
pub fn new_id() -> u16 {
    let mut b = [0u8; 2];
    // A failing system RNG leaves ID 0: still correct, only less spoof-resistant.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
}

/// True when `reply` is a response to `request`: QR set, same opcode, and the same question
/// (names compared case-insensitively). An error reply may leave the question out, and so may
/// any UPDATE response (RFC 2136 §3.8 lets it zero every section count).
fn answers(request: &[u8], reply: &[u8]) -> bool {
    const OPCODE_UPDATE: u8 = 5;
    if reply.len() < 12 || reply[2] & 0x80 == 0 || (reply[2] ^ request[2]) & 0x78 != 0 {
        return false;
    }
    let questions = |m: &[u8]| u16::from_be_bytes([m[4], m[5]]);
    let opcode = (reply[2] >> 3) & 0x0F;
    if questions(reply) == 0 && (rcode(reply) != 0 || opcode == OPCODE_UPDATE) {
        return true;
    }
    let (Some(asked), Some(answered)) = (question(request), question(reply)) else {
        return false;
    };
    questions(reply) == questions(request) && asked.eq_ignore_ascii_case(answered)
}

/// True when a reply's verdict shows our key's valid MAC: verified, or a signed TSIG error or
/// clock skew, which the server really said.
fn genuine(verdict: &Result<Verdict, DnsError>) -> bool {
    matches!(
        verdict,
        Ok(Verdict::Verified | Verdict::ServerError { signed: true, .. })
            | Err(DnsError::Tsig(tsig::TsigError::TimeSkew { .. }))
    )
}

/// The question section of a message (its names are never compressed: nothing precedes them
/// to point at).
fn question(message: &[u8]) -> Option<&[u8]> {
    let mut pos = 12;
    for _ in 0..u16::from_be_bytes([*message.get(4)?, *message.get(5)?]) {
        loop {
            let len = usize::from(*message.get(pos)?);
            pos += 1;
            match len {
                0 => break,
                l if l < 64 => pos += l,
                _ => return None,
            }
        }
        pos += 4;
    }
    message.get(12..pos)
}

impl Transport {
    fn io(&self, source: std::io::Error) -> DnsError {
        DnsError::Io {
            server: self.server,
            source,
        }
    }

    /// Sends the message `build(id)` makes (unsigned bytes) and returns the verified reply.
    /// Each attempt gets a new ID and a fresh signature.
    pub fn exchange(
        &self,
        key: Option<&TsigKey>,
        build: &dyn Fn(u16) -> Result<Vec<u8>, DnsError>,
    ) -> Result<Reply, DnsError> {
        let started = Instant::now();
        let mut timeout = self.timeout;
        let mut last_error = None;
        for attempt in 1..=self.attempts.max(1) {
            let id = new_id();
            let signed = self.sign(key, build(id)?)?;
            // GSS-TSIG goes over TCP: servers whose replies do not verify (Samba, Windows)
            // would make UDP wait out its timeout for a genuine reply that never comes.
            let gss = key.is_some_and(TsigKey::is_context);
            let result = if signed.bytes.len() <= 512 && !gss {
                match self.udp(key, &signed, id, timeout) {
                    Ok(reply) if wire::truncated(&reply) => self.tcp(&signed.bytes, timeout),
                    other => other,
                }
            } else {
                self.tcp(&signed.bytes, timeout)
            };
            match result {
                Ok(bytes) => {
                    let verdict = self.verify(key, &signed, &bytes).map_err(|e| match e {
                        DnsError::Tsig(source) if gss => DnsError::Unverifiable {
                            server: self.server,
                            rcode: rcode(&bytes),
                            source,
                        },
                        e => e,
                    })?;
                    return Ok(Reply { bytes, verdict });
                }
                Err(e) if e.is_timeout() => {
                    tracing::debug!(
                        "{}: no answer within {:?} (attempt {attempt})",
                        self.server,
                        timeout
                    );
                    last_error = Some(e);
                    timeout *= 2;
                }
                Err(e) => return Err(e),
            }
        }
        Err(DnsError::NoAnswer {
            server: self.server,
            attempts: self.attempts.max(1),
            waited: started.elapsed(),
            last: last_error.map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    fn sign(&self, key: Option<&TsigKey>, bytes: Vec<u8>) -> Result<Signed, DnsError> {
        match key {
            Some(key) => Ok(tsig::sign(key, bytes, (self.clock)())?),
            None => Ok(Signed {
                bytes,
                mac: Vec::new(),
            }),
        }
    }

    fn verify(
        &self,
        key: Option<&TsigKey>,
        signed: &Signed,
        reply: &[u8],
    ) -> Result<Verdict, DnsError> {
        match key {
            None => Ok(Verdict::Unsigned),
            Some(key) => Ok(Verifier::new(key, signed).check(reply, (self.clock)())?),
        }
    }

    /// Sends `signed` over UDP and waits until `timeout` for a genuine reply: one with our ID
    /// and question that verifies (or is signed by our key with a TSIG error or a skewed clock,
    /// which the caller reports). Anything else may be forged by whoever can send us a
    /// datagram, so it is discarded and the wait goes on; if nothing genuine arrives in time,
    /// an unverifiable reply is returned (the caller reports it: a server's unsigned BADSIG or
    /// BADKEY is one, and preferred), else a timeout.
    fn udp(
        &self,
        key: Option<&TsigKey>,
        signed: &Signed,
        id: u16,
        timeout: Duration,
    ) -> Result<Vec<u8>, DnsError> {
        let local: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(local).map_err(|e| self.io(e))?;
        socket.connect(self.server).map_err(|e| self.io(e))?;
        socket.send(&signed.bytes).map_err(|e| self.io(e))?;
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65535];
        let mut unverified: Option<(u8, Vec<u8>)> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| self.io(e))?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(self.io(e)),
            };
            let reply = &buf[..n];
            if wire::id(reply) != Some(id) || !answers(&signed.bytes, reply) {
                continue;
            }
            // A truncated reply only moves the exchange to TCP, so it need not verify.
            if key.is_none() || wire::truncated(reply) {
                return Ok(reply.to_vec());
            }
            let verdict = self.verify(key, signed, reply);
            if genuine(&verdict) {
                return Ok(reply.to_vec());
            }
            tracing::debug!("{}: discarding an unverifiable UDP reply", self.server);
            // Should nothing genuine come, a server's unsigned TSIG error (a wrong secret or
            // key name) is the likeliest truth, and the most useful to report.
            let rank = u8::from(matches!(verdict, Ok(Verdict::ServerError { .. })));
            if unverified.as_ref().is_none_or(|(best, _)| rank > *best) {
                unverified = Some((rank, reply.to_vec()));
            }
        }
        unverified.map(|(_, reply)| reply).ok_or(DnsError::Timeout {
            server: self.server,
        })
    }

    /// One message and its reply over a new TCP connection, unsigned and not retried (a
    /// TKEY round: its token is consumed by the server, so a retry starts the negotiation
    /// again instead).
    pub fn tcp_exchange(&self, message: &[u8]) -> Result<Vec<u8>, DnsError> {
        self.tcp(message, self.timeout)
    }

    fn connect(&self, timeout: Duration) -> Result<TcpStream, DnsError> {
        let stream =
            TcpStream::connect_timeout(&self.server, timeout).map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    DnsError::Timeout {
                        server: self.server,
                    }
                }
                _ => self.io(e),
            })?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.io(e))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| self.io(e))?;
        stream.set_nodelay(true).ok();
        Ok(stream)
    }

    fn tcp(&self, message: &[u8], timeout: Duration) -> Result<Vec<u8>, DnsError> {
        let mut stream = self.connect(timeout)?;
        write_framed(&mut stream, message).map_err(|e| self.read_error(e))?;
        read_framed(&mut stream).map_err(|e| self.read_error(e))
    }

    fn read_error(&self, e: std::io::Error) -> DnsError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => DnsError::Timeout {
                server: self.server,
            },
            _ => self.io(e),
        }
    }

    /// A request whose answer is a stream of messages (AXFR): each message is verified and
    /// handed to `on_message`, which returns true when the stream is complete.
    pub fn stream(
        &self,
        key: Option<&TsigKey>,
        request: Vec<u8>,
        on_message: &mut OnMessage<'_>,
    ) -> Result<(), DnsError> {
        let signed = self.sign(key, request)?;
        let mut stream = self.connect(self.timeout)?;
        write_framed(&mut stream, &signed.bytes).map_err(|e| self.read_error(e))?;
        let mut verifier = key.map(|k| Verifier::new(k, &signed));
        // A zone of any size ends within this many messages; more means a broken server.
        for _ in 0..1_000_000 {
            let message = read_framed(&mut stream).map_err(|e| self.read_error(e))?;
            let verdict = match verifier.as_mut() {
                Some(v) => v.check(&message, (self.clock)())?,
                None => Verdict::Unsigned,
            };
            if on_message(&message, &verdict)? {
                return Ok(());
            }
        }
        Err(DnsError::Malformed("the transfer did not end".into()))
    }
}

/// Writes one DNS message over a stream with its two-byte length in front (RFC 1035 §4.2.2),
/// in one write so it goes out as one segment when it fits.
pub fn write_framed(stream: &mut impl Write, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "message over 65535 bytes")
    })?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

/// Reads one length-prefixed DNS message from a stream.
pub fn read_framed(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}
