//! Many plain (unsigned) queries at once: a few UDP sockets per address family behind one
//! `poll`, a window of queries in flight that adapts to loss (`pace`), replies matched by ID,
//! question, source address and socket, lost queries retried with a doubling timeout that
//! starts from the measured round trips, TCP when a reply is truncated. Used by the audit,
//! where tens of thousands of SIP domains make one-query-at-a-time far too slow.
//!
//! Why not tokio: one thread already keeps an authoritative server busy (the work per reply is
//! a few microseconds of parsing); an async runtime would add code without adding speed on a
//! loopback or LAN path.

mod burst;
mod pace;

use std::collections::{HashSet, VecDeque};

use hashbrown::HashMap;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dns::transport::{read_framed, write_framed};
use crate::dns::wire::{self, NameText, Reader, WireError};
use crate::dns::DnsError;
use crate::records::{Fqdn, Rdata, Srv};
use burst::Burst;
use pace::{RoundTrip, Window};

/// The query types the audit and NS discovery ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum QueryType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "SOA")]
    Soa,
    #[serde(rename = "NS")]
    Ns,
    #[serde(rename = "TLSA")]
    Tlsa,
}

impl QueryType {
    pub fn code(self) -> u16 {
        match self {
            QueryType::A => 1,
            QueryType::Ns => 2,
            QueryType::Cname => 5,
            QueryType::Soa => 6,
            QueryType::Aaaa => 28,
            QueryType::Srv => 33,
            QueryType::Tlsa => 52,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Srv => "SRV",
            QueryType::Cname => "CNAME",
            QueryType::Soa => "SOA",
            QueryType::Ns => "NS",
            QueryType::Tlsa => "TLSA",
        }
    }
}

impl std::fmt::Display for QueryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One question to one server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub server: SocketAddr,
    pub name: Fqdn,
    pub qtype: QueryType,
    /// Set only when asking a recursive resolver (NS discovery); authoritative servers are
    /// asked without it so that a cache never answers in their place.
    pub recursion_desired: bool,
}

/// The data of one answer record, as far as the audit needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordData {
    /// A, AAAA, SRV or CNAME in the shared vocabulary.
    Known(Rdata),
    Soa {
        serial: u32,
        /// The negative-caching TTL field (RFC 2308), for audit rule 22.
        minimum: u32,
    },
    Ns(Fqdn),
    /// Any other type: its number and the RDATA in hex (enough to compare servers).
    Other {
        rtype: u16,
        hex: String,
    },
}

/// One record of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireRecord {
    pub name: Fqdn,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RecordData,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub rcode: u8,
    /// The AA bit: the server answered from its own zone data.
    pub authoritative: bool,
    pub answers: Vec<WireRecord>,
    pub authority: Vec<WireRecord>,
}

impl Response {
    /// The SOA serial in the answer or authority section (a NODATA/NXDOMAIN reply carries the
    /// zone's SOA in the authority section), with the zone it belongs to.
    pub fn soa(&self) -> Option<(Fqdn, u32)> {
        self.answers
            .iter()
            .chain(&self.authority)
            .find_map(|r| match r.data {
                RecordData::Soa { serial, .. } => Some((r.name.clone(), serial)),
                _ => None,
            })
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Queries in flight at once (over all servers).
    pub window: usize,
    /// First attempt's timeout; doubled on each retry.
    pub timeout: Duration,
    /// Attempts per query (UDP sends; a TCP retry after truncation is not counted).
    pub attempts: u32,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            window: 100,
            timeout: Duration::from_millis(800),
            attempts: 4,
        }
    }
}

/// Counters of one batch, for the audit's statistics and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Questions asked (each once, however many attempts it took).
    pub questions: usize,
    /// UDP datagrams sent, retries included.
    pub sent: usize,
    /// Re-sends after a timeout.
    pub retries: usize,
    /// Replies that were truncated and asked again over TCP.
    pub tcp: usize,
    /// Questions without any answer after every attempt.
    pub unanswered: usize,
    /// Questions answered by a reply to an earlier attempt that came after its timeout.
    pub late: usize,
}

impl BatchStats {
    pub fn add(&mut self, other: &BatchStats) {
        self.questions += other.questions;
        self.sent += other.sent;
        self.retries += other.retries;
        self.tcp += other.tcp;
        self.unanswered += other.unanswered;
        self.late += other.late;
    }
}

/// Servers that let this many questions in a row go unanswered after every attempt are taken
/// as down: their remaining questions fail at once instead of each waiting for all attempts.
const DEAD_AFTER: u32 = 3;
/// Long enough for any UDP reply (EDNS lets servers send up to the size we announce).
const EDNS_PAYLOAD: u16 = 1232;

/// Encodes a query with an EDNS(0) OPT record (so that larger answers fit in UDP).
pub fn encode_query(id: u16, question: &Question) -> Result<Vec<u8>, WireError> {
    let mut m = Vec::with_capacity(64);
    encode_query_into(&mut m, id, question)?;
    Ok(m)
}

/// [`encode_query`] appended to `m` (a batch encodes a window refill into one buffer); on an
/// error `m` is left as it was.
fn encode_query_into(m: &mut Vec<u8>, id: u16, question: &Question) -> Result<(), WireError> {
    let start = m.len();
    m.extend_from_slice(&id.to_be_bytes());
    m.push(if question.recursion_desired {
        0x01
    } else {
        0x00
    });
    m.push(0x00);
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    if let Err(e) = wire::push_name(m, question.name.as_str()) {
        m.truncate(start);
        return Err(e);
    }
    m.extend_from_slice(&question.qtype.code().to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    // OPT: root owner, type 41, class = payload size, TTL 0, no options.
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The next name of a message, read through `text` (one allocation: the name kept). Names
/// are almost always ASCII: checked as UTF-8 first, which takes 40% fewer instructions
/// than the lossy conversion (callgrind, 200,000 names: 20M, not 35M), kept for the rest.
fn read_name(r: &mut Reader<'_>, text: &mut NameText) -> Result<Fqdn, WireError> {
    r.name_into(text)?;
    Ok(match std::str::from_utf8(text.as_bytes()) {
        Ok(name) => Fqdn::from_absolute(name),
        Err(_) => Fqdn::from_absolute(&text.to_string_lossy()),
    })
}

fn read_record(
    r: &mut Reader<'_>,
    message: &[u8],
    text: &mut NameText,
) -> Result<WireRecord, WireError> {
    let name = read_name(r, text)?;
    let rtype = r.u16()?;
    let _class = r.u16()?;
    let ttl = r.u32()?;
    let len = r.u16()? as usize;
    let start = r.pos();
    let raw = r.bytes(len)?;
    let mut inner = Reader::at(message, start);
    let data = match (rtype, len) {
        (1, 4) => RecordData::Known(Rdata::A([raw[0], raw[1], raw[2], raw[3]].into())),
        (28, 16) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(raw);
            RecordData::Known(Rdata::Aaaa(octets.into()))
        }
        (5, _) => RecordData::Known(Rdata::Cname(read_name(&mut inner, text)?)),
        (2, _) => RecordData::Ns(read_name(&mut inner, text)?),
        (33, _) => {
            let priority = inner.u16()?;
            let weight = inner.u16()?;
            let port = inner.u16()?;
            RecordData::Known(Rdata::Srv(Srv {
                priority,
                weight,
                port,
                target: read_name(&mut inner, text)?,
            }))
        }
        (6, _) => {
            inner.name_into(text)?;
            inner.name_into(text)?;
            let serial = inner.u32()?;
            // refresh, retry, expire, then the minimum.
            for _ in 0..3 {
                inner.u32()?;
            }
            RecordData::Soa {
                serial,
                minimum: inner.u32()?,
            }
        }
        _ => RecordData::Other {
            rtype,
            hex: hex(raw),
        },
    };
    Ok(WireRecord {
        name,
        rtype,
        ttl,
        data,
    })
}

/// Parses a reply and checks that it answers `question` (same name and type): a late reply
/// to an earlier question that reused the ID must not be taken for this one.
pub fn parse_response(message: &[u8], question: &Question) -> Result<Response, WireError> {
    let mut r = Reader::at(message, 4);
    let qd = r.u16()?;
    let an = r.u16()?;
    let ns = r.u16()?;
    let _ar = r.u16()?;
    if qd != 1 {
        return Err(WireError::Short(4));
    }
    let mut text = NameText::new();
    r.name_into(&mut text)?;
    let qtype = r.u16()?;
    let _qclass = r.u16()?;
    if !text
        .as_bytes()
        .eq_ignore_ascii_case(question.name.as_str().as_bytes())
        || qtype != question.qtype.code()
    {
        return Err(WireError::BadName(12));
    }
    let mut answers = Vec::with_capacity(an as usize);
    for _ in 0..an {
        answers.push(read_record(&mut r, message, &mut text)?);
    }
    let mut authority = Vec::with_capacity(ns as usize);
    for _ in 0..ns {
        authority.push(read_record(&mut r, message, &mut text)?);
    }
    Ok(Response {
        rcode: message[3] & 0x0F,
        authoritative: message[2] & 0x04 != 0,
        answers,
        authority,
    })
}

struct Flight {
    index: usize,
    attempt: u32,
    sent: Instant,
    deadline: Instant,
    /// The socket it was sent from: only a reply arriving there answers it.
    socket: SocketId,
}

/// A socket of the batch: its address family (IPv6 or not) and its place among the family's.
type SocketId = (bool, usize);

/// The queries of one window refill: their bytes end to end, and each one's place in them.
#[derive(Default)]
struct Outgoing {
    bytes: Vec<u8>,
    datagrams: Vec<Datagram>,
}

/// One query of a refill.
pub(super) struct Datagram {
    socket: SocketId,
    id: u16,
    /// Where it is in [`Outgoing::bytes`].
    pub(super) bytes: std::ops::Range<usize>,
    pub(super) server: SocketAddr,
}

/// A small fast generator for query IDs (xorshift), seeded from the system RNG: IDs need to be
/// unpredictable to an off-path spoofer, not cryptographically strong per query.
struct Ids(u64);

impl Ids {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        Ids(u64::from_le_bytes(seed) | 1)
    }

    fn next(&mut self) -> u16 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u16
    }
}

/// Asks every question and returns one result per question, in the same order. `progress` is
/// called with the number of questions finished so far (answered or given up). A host without
/// one address family (no IPv6, typically) fails only that family's questions, each with
/// `DnsError::FamilyUnavailable`.
pub fn resolve_all(
    questions: &[Question],
    settings: &BatchSettings,
    progress: &mut dyn FnMut(usize),
) -> (Vec<Result<Response, DnsError>>, BatchStats) {
    resolve_with(questions, settings, progress, &|local| {
        UdpSocket::bind(local)
    })
}

/// `resolve_all` with the sockets made by `bind` (given `0.0.0.0:0` or `[::]:0`).
fn resolve_with(
    questions: &[Question],
    settings: &BatchSettings,
    progress: &mut dyn FnMut(usize),
    bind: &dyn Fn(SocketAddr) -> std::io::Result<UdpSocket>,
) -> (Vec<Result<Response, DnsError>>, BatchStats) {
    let mut engine = Engine::new(questions, settings, bind);
    engine.run(progress);
    let results = engine
        .results
        .into_iter()
        .map(|r| r.expect("every question is finished"))
        .collect();
    (results, engine.stats)
}

/// Whether this host can send to `addr`'s address family at all. A UDP socket of the family is
/// opened and connected, which sends nothing: it only looks up a route.
pub fn family_usable(addr: SocketAddr) -> bool {
    let local = match addr {
        SocketAddr::V4(_) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    };
    match UdpSocket::bind(local).and_then(|socket| socket.connect(addr)) {
        Ok(()) => true,
        Err(error) => !family_unavailable(&error),
    }
}

/// True when a send (or bind) failed because this host cannot use the destination's address
/// family: no socket of that family (EAFNOSUPPORT), no local address of it (EADDRNOTAVAIL), or
/// no route to any network of it (ENETUNREACH, what an IPv4-only host answers for IPv6).
fn family_unavailable(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    // Linux numbers, for kernels or libcs whose errors std does not map to a kind.
    const EAFNOSUPPORT: i32 = 97;
    const EADDRNOTAVAIL: i32 = 99;
    const ENETUNREACH: i32 = 101;
    matches!(
        error.kind(),
        ErrorKind::NetworkUnreachable | ErrorKind::AddrNotAvailable | ErrorKind::Unsupported
    ) || (cfg!(target_os = "linux")
        && matches!(
            error.raw_os_error(),
            Some(EAFNOSUPPORT | EADDRNOTAVAIL | ENETUNREACH)
        ))
}

/// UDP sockets per address family. Each has its own source port, and servers that spread
/// their work over threads by the client's address and port (BIND 9.16+, Knot and PowerDNS
/// with SO_REUSEPORT) serve each from its own thread: from one socket, a whole audit waited
/// on one of BIND's threads. Measured on 2 cores against BIND's two threads (10,000 zones,
/// medians of 8 alternating runs): 1 socket 846 ms, 2 sockets 766, 3 786, 4 822, 8 804 (each
/// more is one more to poll, and the replies come in smaller bursts). Which of the server's
/// threads takes a socket is the kernel's choice: two sockets may share one, which is why each
/// question goes to the least loaded socket. With that, 2, 3 and 4 sockets measured within the
/// noise of each other (10 alternating runs each, 816-851 ms).
const SOCKETS: usize = 2;

/// The sockets of one address family: not needed, bound, or not available on this host.
enum Family {
    Unused,
    Ready(Vec<UdpSocket>),
    Unavailable(String),
}

impl Family {
    fn sockets(&self) -> &[UdpSocket] {
        match self {
            Family::Ready(sockets) => sockets,
            _ => &[],
        }
    }
}

struct Engine<'a> {
    questions: &'a [Question],
    settings: BatchSettings,
    v4: Family,
    v6: Family,
    queue: VecDeque<(usize, u32)>,
    flights: HashMap<u16, Flight>,
    /// IDs of earlier attempts of questions being retried: the question, until when they
    /// count, and the socket they were sent from.
    late: HashMap<u16, (usize, Instant, SocketId)>,
    results: Vec<Option<Result<Response, DnsError>>>,
    done: usize,
    stats: BatchStats,
    ids: Ids,
    silent_in_a_row: HashMap<SocketAddr, u32>,
    dead: HashSet<SocketAddr>,
    /// Queries in flight from each socket of each family (IPv4, IPv6): each question goes
    /// out on its family's socket with the fewest (see [`Engine::least_loaded_socket`]).
    in_flight: [Vec<usize>; 2],
    /// Taken out while its datagrams are handled (they borrow it).
    burst: Option<Box<Burst>>,
    /// A window refill, encoded end to end: kept from one refill to the next, so that
    /// sending allocates nothing per query.
    outgoing: Outgoing,
    window: Window,
    round_trip: RoundTrip,
}

impl<'a> Engine<'a> {
    fn new(
        questions: &'a [Question],
        settings: &BatchSettings,
        bind: &dyn Fn(SocketAddr) -> std::io::Result<UdpSocket>,
    ) -> Self {
        let family = |v6: bool| {
            if !questions.iter().any(|q| q.server.is_ipv6() == v6) {
                return Family::Unused;
            }
            let local: SocketAddr = if v6 {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let mut sockets = Vec::with_capacity(SOCKETS);
            for _ in 0..SOCKETS {
                match bind(local) {
                    Ok(socket) => sockets.push(socket),
                    // Whatever the reason, no socket of this family means none of its
                    // questions can be asked; the other family's still can. Fewer than
                    // SOCKETS only spread the work less.
                    Err(e) if sockets.is_empty() => {
                        return Family::Unavailable(format!(
                            "cannot open a UDP socket on {local}: {e}"
                        ))
                    }
                    Err(_) => break,
                }
            }
            Family::Ready(sockets)
        };
        let window = settings.window.clamp(1, 10_000);
        let (v4, v6) = (family(false), family(true));
        let in_flight = [vec![0; v4.sockets().len()], vec![0; v6.sockets().len()]];
        Engine {
            questions,
            settings: BatchSettings {
                window,
                attempts: settings.attempts.max(1),
                ..*settings
            },
            v4,
            v6,
            queue: (0..questions.len()).map(|i| (i, 1)).collect(),
            flights: HashMap::new(),
            late: HashMap::new(),
            results: (0..questions.len()).map(|_| None).collect(),
            done: 0,
            stats: BatchStats {
                questions: questions.len(),
                ..BatchStats::default()
            },
            ids: Ids::new(),
            silent_in_a_row: HashMap::new(),
            dead: HashSet::new(),
            in_flight,
            burst: Some(Box::new(Burst::new(window))),
            outgoing: Outgoing::default(),
            window: Window::new(window),
            round_trip: RoundTrip::default(),
        }
    }

    fn finish(&mut self, index: usize, result: Result<Response, DnsError>) {
        if self.results[index].is_none() {
            self.results[index] = Some(result);
            self.done += 1;
        }
    }

    fn run(&mut self, progress: &mut dyn FnMut(usize)) {
        let mut last_sweep = Instant::now();
        let mut reported = 0;
        // Short enough for timeouts to be swept on time, long enough not to spin.
        let wait = Duration::from_millis(10);
        while self.done < self.questions.len() {
            // Refill after every reply: waiting for the whole window to drain first would
            // leave the server idle for a round trip each time.
            self.fill_window();
            if !self.flights.is_empty() {
                self.receive(wait);
            }
            if last_sweep.elapsed() >= Duration::from_millis(5) || self.flights.is_empty() {
                self.sweep();
                last_sweep = Instant::now();
            }
            if self.done != reported {
                reported = self.done;
                progress(reported);
            }
        }
    }

    /// Sends queued questions until the window is full: each encoded and put in flight on
    /// its family's least loaded socket, then sent together (one `sendmmsg` per socket).
    fn fill_window(&mut self) {
        let mut out = std::mem::take(&mut self.outgoing);
        out.bytes.clear();
        out.datagrams.clear();
        while self.flights.len() < self.window.limit() {
            let Some((index, attempt)) = self.queue.pop_front() else {
                break;
            };
            if self.results[index].is_some() {
                continue;
            }
            let server = self.questions[index].server;
            if self.dead.contains(&server) {
                self.give_up_unasked(index, server);
                continue;
            }
            let Some(socket) = self.least_loaded_socket(server.is_ipv6()) else {
                self.fail_unavailable(index);
                continue;
            };
            let id = self.unused_id();
            let start = out.bytes.len();
            match encode_query_into(&mut out.bytes, id, &self.questions[index]) {
                Ok(()) => {
                    self.fly(id, index, attempt, socket);
                    let bytes = start..out.bytes.len();
                    out.datagrams.push(Datagram {
                        socket,
                        id,
                        bytes,
                        server,
                    });
                }
                Err(e) => self.finish(index, Err(DnsError::Malformed(e.to_string()))),
            }
        }
        if !out.datagrams.is_empty() {
            for v6 in [false, true] {
                for i in 0..self.family(v6).sockets().len() {
                    let socket = (v6, i);
                    let datagrams: Vec<&Datagram> = out
                        .datagrams
                        .iter()
                        .filter(|d| d.socket == socket)
                        .collect();
                    if !datagrams.is_empty() {
                        self.send_all(socket, &out.bytes, &datagrams);
                    }
                }
            }
        }
        self.outgoing = out;
    }

    /// The socket of the family (IPv6 or not) with the fewest queries in flight, if the family
    /// has any. Servers that share their work out over threads by the client's port (BIND,
    /// Knot, PowerDNS) may serve two of our sockets from one busy thread: that socket's
    /// answers come back slower, so it keeps more in flight, and the next questions go to the
    /// sockets a less busy thread serves. Taking turns instead sent each socket an equal
    /// share, and the busiest server thread set the pace.
    fn least_loaded_socket(&self, v6: bool) -> Option<SocketId> {
        let counts = &self.in_flight[usize::from(v6)];
        let (index, _) = counts.iter().enumerate().min_by_key(|(_, n)| **n)?;
        Some((v6, index))
    }

    /// Takes a query out of flight.
    fn land(&mut self, id: u16) -> Option<Flight> {
        let flight = self.flights.remove(&id)?;
        let (v6, index) = flight.socket;
        self.in_flight[usize::from(v6)][index] -= 1;
        Some(flight)
    }

    fn family(&self, v6: bool) -> &Family {
        if v6 {
            &self.v6
        } else {
            &self.v4
        }
    }

    fn socket(&self, (v6, index): SocketId) -> &UdpSocket {
        &self.family(v6).sockets()[index]
    }

    /// Puts attempt `attempt` of question `index` in flight under `id`.
    fn fly(&mut self, id: u16, index: usize, attempt: u32, socket: SocketId) {
        // A recursive resolver's answer time depends on its cache, not on the path: the
        // round trips of cached answers say nothing of how long a cold one takes.
        let first = if self.questions[index].recursion_desired {
            self.settings.timeout
        } else {
            self.round_trip.timeout(self.settings.timeout)
        };
        let timeout = first * 2u32.saturating_pow(attempt - 1);
        let sent = Instant::now();
        let flight = Flight {
            index,
            attempt,
            sent,
            deadline: sent + timeout,
            socket,
        };
        self.in_flight[usize::from(socket.0)][socket.1] += 1;
        self.flights.insert(id, flight);
    }

    /// Sends datagrams already in flight in one `sendmmsg`; what it did not take is sent one
    /// by one, and what cannot be sent leaves the flights (back in the queue when the send
    /// buffer is full, finished with the reason otherwise).
    fn send_all(&mut self, socket: SocketId, bytes: &[u8], datagrams: &[&Datagram]) {
        let mut burst = self.burst.take();
        let udp = self.socket(socket);
        let sent = burst.as_mut().map_or(0, |b| b.send(udp, bytes, datagrams));
        self.burst = burst;
        let udp = self.socket(socket);
        let mut results: Vec<std::io::Result<usize>> = (0..sent).map(|_| Ok(0)).collect();
        let mut full = false;
        for datagram in &datagrams[sent..] {
            // After a full buffer, the rest are not tried now: they go back to the queue.
            let result = if full {
                Err(std::io::ErrorKind::WouldBlock.into())
            } else {
                udp.send_to(&bytes[datagram.bytes.clone()], datagram.server)
            };
            full |= matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            results.push(result);
        }
        for (datagram, result) in datagrams.iter().zip(results) {
            self.sent(datagram.id, datagram.server, result);
        }
    }

    /// Counts a datagram sent, or takes it out of flight when it could not be.
    fn sent(&mut self, id: u16, server: SocketAddr, result: std::io::Result<usize>) {
        let Some(flight) = self.flights.get(&id) else {
            return;
        };
        let (index, attempt) = (flight.index, flight.attempt);
        match result {
            Ok(_) => {
                self.stats.sent += 1;
                if attempt > 1 {
                    self.stats.retries += 1;
                }
            }
            // A full send buffer is a lost packet like any other: retried on schedule.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.land(id);
                self.queue.push_back((index, attempt));
            }
            Err(source) if family_unavailable(&source) => {
                self.land(id);
                let reason = source.to_string();
                self.finish(index, Err(DnsError::FamilyUnavailable { server, reason }));
            }
            Err(source) => {
                self.land(id);
                self.finish(index, Err(DnsError::Io { server, source }));
            }
        }
    }

    /// Fails a question to a server taken as down, without asking it.
    fn give_up_unasked(&mut self, index: usize, server: SocketAddr) {
        self.stats.unanswered += 1;
        self.finish(
            index,
            Err(DnsError::NoAnswer {
                server,
                attempts: 0,
                waited: Duration::ZERO,
                last: format!(
                    "{server} left {DEAD_AFTER} questions in a row unanswered; not asked"
                ),
            }),
        );
    }

    /// An ID that is neither in flight nor still awaited from an earlier attempt.
    fn unused_id(&mut self) -> u16 {
        let mut id = self.ids.next();
        while self.flights.contains_key(&id) || self.late.contains_key(&id) {
            id = self.ids.next();
        }
        id
    }

    /// Fails question `index`, whose address family has no socket on this host, with the
    /// reason: it cannot be asked, which says nothing about the server.
    fn fail_unavailable(&mut self, index: usize) {
        let server = self.questions[index].server;
        let reason = match self.family(server.is_ipv6()) {
            Family::Unavailable(reason) => reason.clone(),
            _ => unreachable!("a family is set up for every question's server"),
        };
        self.finish(index, Err(DnsError::FamilyUnavailable { server, reason }));
    }

    /// Waits up to `wait` for a datagram on any socket, then takes what every socket has
    /// waiting (up to [`BURST`] each, one `recvmmsg` each) and handles it.
    fn receive(&mut self, wait: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;

        let ids: Vec<SocketId> = [false, true]
            .into_iter()
            .flat_map(|v6| (0..self.family(v6).sockets().len()).map(move |i| (v6, i)))
            .collect();
        let mut ready = Vec::with_capacity(ids.len());
        {
            let mut fds: Vec<PollFd<'_>> = ids
                .iter()
                .map(|&id| PollFd::new(self.socket(id).as_fd(), PollFlags::POLLIN))
                .collect();
            let millis = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(millis)).unwrap_or(0) <= 0 {
                return;
            }
            for (fd, &id) in fds.iter().zip(&ids) {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    ready.push(id);
                }
            }
        }
        let Some(mut burst) = self.burst.take() else {
            return;
        };
        for socket in ready {
            let taken = burst.receive(self.socket(socket));
            for index in 0..taken {
                if let Some(from) = burst.sender(index) {
                    self.handle(burst.datagram(index), from, socket);
                }
            }
        }
        self.burst = Some(burst);
    }

    /// One datagram that came in: the answer to a question in flight, or ignored.
    fn handle(&mut self, message: &[u8], from: SocketAddr, socket: SocketId) -> Option<()> {
        let n = message.len();
        let id = wire::id(message)?;
        // The current attempt's ID, or an earlier attempt's: a reply that is merely late
        // still answers the question. Only on the socket the query went out from: one
        // arriving on another was not sent to us in reply to it.
        let (index, current, sent_from) = match self.flights.get(&id) {
            Some(flight) => {
                if flight.attempt == 1 {
                    self.round_trip.sample(flight.sent.elapsed());
                }
                (flight.index, true, flight.socket)
            }
            None => {
                let (index, _, sent_from) = self.late.get(&id)?;
                (*index, false, *sent_from)
            }
        };
        if sent_from != socket {
            return Some(());
        }
        if self.results[index].is_some() {
            // Answered already (through another attempt): this one is spent.
            if current {
                self.land(id);
            } else {
                self.late.remove(&id);
            }
            return Some(());
        }
        let question = &self.questions[index];
        if from != question.server || n < 12 || message[2] & 0x80 == 0 {
            return Some(());
        }
        let result = if wire::truncated(message) {
            self.stats.tcp += 1;
            tcp_query(question, id, self.settings.timeout * 4)
        } else {
            parse_response(message, question).map_err(|e| DnsError::Malformed(e.to_string()))
        };
        // A reply that does not answer this question (a stale reply to a reused ID) is
        // ignored; the question stays in flight until its own reply or its timeout.
        if matches!(result, Err(DnsError::Malformed(_))) && !wire::truncated(message) {
            return Some(());
        }
        if current {
            self.land(id);
        } else {
            self.late.remove(&id);
            self.stats.late += 1;
        }
        self.silent_in_a_row.remove(&self.questions[index].server);
        self.window.answered();
        self.finish(index, result);
        Some(())
    }

    /// Re-queues questions whose attempt timed out, or gives them up after the last attempt.
    fn sweep(&mut self) {
        let now = Instant::now();
        let expired: Vec<u16> = self
            .flights
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let results = &self.results;
        self.late
            .retain(|_, (index, until, _)| *until > now && results[*index].is_none());
        for id in expired {
            let flight = self.land(id).expect("listed above");
            if self.results[flight.index].is_some() {
                continue;
            }
            let server = self.questions[flight.index].server;
            self.window
                .lost(now, self.round_trip.timeout(self.settings.timeout));
            if flight.attempt < self.settings.attempts {
                // Retries go first: they are the oldest questions. The old ID keeps
                // accepting a reply for as long as the remaining attempts can take.
                let rest: Duration = (flight.attempt..self.settings.attempts)
                    .map(|a| self.settings.timeout * 2u32.saturating_pow(a))
                    .sum();
                self.late
                    .insert(id, (flight.index, now + rest, flight.socket));
                self.queue.push_front((flight.index, flight.attempt + 1));
            } else {
                self.stats.unanswered += 1;
                let silent = self.silent_in_a_row.entry(server).or_insert(0);
                *silent += 1;
                if *silent >= DEAD_AFTER {
                    self.dead.insert(server);
                }
                let waited: Duration = (0..self.settings.attempts)
                    .map(|a| self.settings.timeout * 2u32.saturating_pow(a))
                    .sum();
                self.finish(
                    flight.index,
                    Err(DnsError::NoAnswer {
                        server,
                        attempts: self.settings.attempts,
                        waited,
                        last: "no reply over UDP".into(),
                    }),
                );
            }
        }
    }
}

/// Asks one question over TCP (after a truncated UDP reply).
pub fn tcp_query(question: &Question, id: u16, timeout: Duration) -> Result<Response, DnsError> {
    let server = question.server;
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            DnsError::Timeout { server }
        }
        _ => DnsError::Io { server, source },
    };
    let bytes = encode_query(id, question).map_err(|e| DnsError::Malformed(e.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write_framed(&mut stream, &bytes).map_err(io)?;
    let reply = read_framed(&mut stream).map_err(io)?;
    if wire::id(&reply) != Some(id) {
        return Err(DnsError::Malformed(format!(
            "{server}: TCP reply with another ID"
        )));
    }
    parse_response(&reply, question).map_err(|e| DnsError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(name: &str, qtype: QueryType) -> Question {
        Question {
            server: "127.0.0.1:53".parse().unwrap(),
            name: Fqdn::from_absolute(name),
            qtype,
            recursion_desired: false,
        }
    }

    #[test]
    fn query_encoding_has_one_question_and_an_opt_record() {
        let q = question("_xmpp-server._tcp.contoso.com.", QueryType::Srv);
        let bytes = encode_query(0x1234, &q).unwrap();
        assert_eq!(&bytes[..4], &[0x12, 0x34, 0, 0]);
        assert_eq!(&bytes[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(bytes[12], 12);
        assert_eq!(&bytes[13..25], b"_xmpp-server");
    }

    #[test]
    fn a_reply_to_another_question_is_rejected() {
        let q = question("contoso.com.", QueryType::A);
        let mut reply = encode_query(7, &q).unwrap();
        reply[2] |= 0x80;
        // Drop the OPT record: additional count 0 and truncate.
        reply[11] = 0;
        reply.truncate(reply.len() - 11);
        assert!(parse_response(&reply, &q).is_ok());
        let other = question("fabrikam.com.", QueryType::A);
        assert!(parse_response(&reply, &other).is_err());
        let other_type = question("contoso.com.", QueryType::Aaaa);
        assert!(parse_response(&reply, &other_type).is_err());
    }

    /// A UDP server on 127.0.0.1 that answers each query with itself marked as a reply (no
    /// records, NOERROR), until it has been idle for a second.
    fn echo_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                buf[2] |= 0x80;
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        (addr, thread)
    }

    /// A UDP socket on 127.0.0.1 for a test server, which gives up after a second idle.
    fn server_socket() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let server = socket.local_addr().unwrap();
        (socket, server)
    }

    /// `count` SOA questions for distinct names, all to `server`.
    fn soa_questions(server: SocketAddr, count: usize) -> Vec<Question> {
        (0..count)
            .map(|i| Question {
                server,
                ..question(&format!("d{i}.contoso.com."), QueryType::Soa)
            })
            .collect()
    }

    fn fast() -> BatchSettings {
        BatchSettings {
            window: 10,
            timeout: Duration::from_millis(200),
            attempts: 2,
        }
    }

    #[test]
    fn without_an_ipv6_socket_only_the_ipv6_questions_fail_and_say_why() {
        let (v4_server, thread) = echo_server();
        let mut v4 = question("contoso.com.", QueryType::Soa);
        v4.server = v4_server;
        let mut v6 = question("contoso.com.", QueryType::Soa);
        v6.server = "[2001:db8::53]:53".parse().unwrap();
        let no_ipv6 = |local: SocketAddr| {
            if local.is_ipv6() {
                Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "Address family not supported by protocol",
                ))
            } else {
                UdpSocket::bind(local)
            }
        };
        let questions = [v6.clone(), v4, v6];
        let (results, stats) = resolve_with(&questions, &fast(), &mut |_| {}, &no_ipv6);
        thread.join().unwrap();
        assert!(results[1].is_ok(), "{:?}", results[1]);
        for result in [&results[0], &results[2]] {
            let error = result.as_ref().unwrap_err();
            assert!(error.is_family_unavailable(), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("address family unavailable: this host cannot send to IPv6"),
                "{error}"
            );
        }
        assert_eq!(stats.sent, 1, "nothing was sent for the IPv6 questions");
    }

    #[test]
    fn questions_go_out_from_every_socket_and_every_reply_is_matched() {
        // The echo server notes every query's source port; answers go back to it.
        let (socket, server) = server_socket();
        let thread = std::thread::spawn(move || {
            let mut ports = HashSet::new();
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                ports.insert(from.port());
                buf[2] |= 0x80;
                let _ = socket.send_to(&buf[..n], from);
            }
            ports
        });
        let questions = soa_questions(server, 60);
        let (results, stats) = resolve_all(&questions, &fast(), &mut |_| {});
        let ports = thread.join().unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!((stats.sent, stats.retries), (60, 0), "{stats:?}");
        assert_eq!(ports.len(), SOCKETS, "{ports:?}");
    }

    #[test]
    fn questions_go_to_the_socket_whose_answers_come_back() {
        // The server holds the replies to the first source port it sees for 20 ms (one of a
        // server's threads busy with it) and answers the other at once: the questions not yet
        // sent go out where answers come back, not to each socket in turn (about half each).
        let (socket, server) = server_socket();
        let thread = std::thread::spawn(move || {
            let mut slow_port = None;
            let mut held: Vec<(Instant, Vec<u8>, SocketAddr)> = Vec::new();
            let mut count: HashMap<u16, usize> = HashMap::new();
            let mut buf = [0u8; 512];
            socket
                .set_read_timeout(Some(Duration::from_millis(2)))
                .unwrap();
            let quiet_until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < quiet_until {
                let due = held
                    .iter()
                    .take_while(|(at, _, _)| at.elapsed() >= Duration::from_millis(20))
                    .count();
                for (_, reply, to) in held.drain(..due) {
                    socket.send_to(&reply, to).unwrap();
                }
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    if held.is_empty() && !count.is_empty() {
                        break;
                    }
                    continue;
                };
                *count.entry(from.port()).or_default() += 1;
                buf[2] |= 0x80;
                if *slow_port.get_or_insert(from.port()) == from.port() {
                    held.push((Instant::now(), buf[..n].to_vec(), from));
                } else {
                    socket.send_to(&buf[..n], from).unwrap();
                }
            }
            (slow_port.unwrap(), count)
        });
        let questions = soa_questions(server, 60);
        let settings = BatchSettings {
            timeout: Duration::from_secs(1),
            ..fast()
        };
        let (results, stats) = resolve_all(&questions, &settings, &mut |_| {});
        let (slow_port, count) = thread.join().unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // (Retries are not ruled out: on a loaded machine a held reply may outlast the first
        // timeout, which follows the fast replies' round trips down to 50 ms.)
        assert!(stats.sent >= 60, "{stats:?}");
        assert!(count[&slow_port] < 20, "{count:?} {stats:?}");
    }

    #[test]
    fn a_reply_sent_to_another_of_our_sockets_answers_nothing() {
        // The server answers each query correctly, but to the port of an earlier query from
        // another of our sockets, as an off-path spoofer who learnt one port would: only the
        // socket a query went out from may take its reply.
        let (socket, server) = server_socket();
        let thread = std::thread::spawn(move || {
            let mut other: Option<SocketAddr> = None;
            let mut misdirected = 0;
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if let Some(to) = other.filter(|to| *to != from) {
                    buf[2] |= 0x80;
                    let _ = socket.send_to(&buf[..n], to);
                    misdirected += 1;
                }
                other = Some(from);
            }
            misdirected
        });
        let questions = soa_questions(server, 3);
        let (results, stats) = resolve_all(&questions, &fast(), &mut |_| {});
        let misdirected = thread.join().unwrap();
        assert!(misdirected > 0, "the server sent no reply");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(DnsError::NoAnswer { .. }))),
            "{results:?}"
        );
        assert_eq!(stats.unanswered, 3, "{stats:?}");
    }

    #[test]
    fn a_server_that_drops_what_overflows_its_buffer_gets_every_question_answered() {
        use nix::sys::socket::{setsockopt, sockopt::RcvBuf};
        // A receive buffer of a few datagrams, emptied at most every millisecond: a window
        // of 100 overflows it, the kernel drops the rest, as a busy server's does.
        let (socket, server) = server_socket();
        setsockopt(&socket, RcvBuf, &2048).unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut answered = 0;
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                buf[2] |= 0x80;
                let _ = socket.send_to(&buf[..n], from);
                answered += 1;
                if answered % 4 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let questions = soa_questions(server, 300);
        let settings = BatchSettings {
            window: 100,
            timeout: Duration::from_millis(800),
            attempts: 6,
        };
        let (results, stats) = resolve_all(&questions, &settings, &mut |_| {});
        thread.join().unwrap();
        assert!(results.iter().all(Result::is_ok), "{stats:?}");
        assert_eq!(stats.unanswered, 0, "{stats:?}");
        assert!(stats.retries > 0, "the buffer never overflowed: {stats:?}");
        // A fixed window of 100 loses most of every refill; the shrinking one a few per cut.
        assert!(stats.retries < questions.len(), "{stats:?}");
    }

    #[test]
    fn the_loopback_family_is_usable_and_connecting_sends_nothing() {
        // A UDP "connect" only picks a route: nothing listens on port 9 and nothing is sent.
        assert!(family_usable(SocketAddr::from(([127, 0, 0, 1], 9))));
    }

    #[test]
    fn send_errors_of_a_missing_family_are_told_apart_from_other_failures() {
        use std::io::{Error, ErrorKind};
        for unavailable in [
            Error::from_raw_os_error(101), // ENETUNREACH: IPv6 server from an IPv4-only host
            Error::from_raw_os_error(97),  // EAFNOSUPPORT
            Error::from_raw_os_error(99),  // EADDRNOTAVAIL
            Error::from(ErrorKind::NetworkUnreachable),
        ] {
            assert!(family_unavailable(&unavailable), "{unavailable}");
        }
        for other in [
            Error::from(ErrorKind::ConnectionRefused),
            Error::from(ErrorKind::PermissionDenied),
            Error::from_raw_os_error(113), // EHOSTUNREACH: this server, not the family
        ] {
            assert!(!family_unavailable(&other), "{other}");
        }
    }
}
