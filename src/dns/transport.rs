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

fn new_id() -> u16 {
    let mut b = [0u8; 2];
    // A failing system RNG leaves ID 0: still correct, only less spoof-resistant.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
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
            let result = if signed.bytes.len() <= 512 {
                match self.udp(&signed.bytes, id, timeout) {
                    Ok(reply) if wire::truncated(&reply) => self.tcp(&signed.bytes, timeout),
                    other => other,
                }
            } else {
                self.tcp(&signed.bytes, timeout)
            };
            match result {
                Ok(bytes) => {
                    let verdict = self.verify(key, &signed, &bytes)?;
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

    fn udp(&self, message: &[u8], id: u16, timeout: Duration) -> Result<Vec<u8>, DnsError> {
        let local: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(local).map_err(|e| self.io(e))?;
        socket.connect(self.server).map_err(|e| self.io(e))?;
        socket.send(message).map_err(|e| self.io(e))?;
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65535];
        // Ignore stray datagrams with another ID, but never past the deadline.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DnsError::Timeout {
                    server: self.server,
                });
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| self.io(e))?;
            match socket.recv(&mut buf) {
                Ok(n) if n >= 12 && wire::id(&buf[..n]) == Some(id) => return Ok(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(DnsError::Timeout {
                        server: self.server,
                    })
                }
                Err(e) => return Err(self.io(e)),
            }
        }
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
