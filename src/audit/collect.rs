//! Reads what the authoritative servers serve for the audited domains, in a few concurrent
//! rounds (zones and their servers; serials; SRV records; the zones of targets met on the way;
//! then what the SRV records point at), into a [`Snapshot`] the rules read without touching the
//! network. Each round is one batch: every question of the round is in flight together. With
//! given servers, the first one is asked the SRV records in the zones' round already.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use hashbrown::Equivalent;

use crate::dns::authority::{self, AuthorityError};
use crate::dns::batch::{self, BatchSettings, BatchStats, QueryType, Question, Response};
use crate::dns::DnsError;
use crate::plan::desired::{XMPPS_SERVER_SRV, XMPP_SERVER_SRV};
use crate::records::{Fqdn, Rdata, RecordType, RrKey};

/// Where the authoritative servers come from.
#[derive(Debug, Clone)]
pub enum Servers {
    /// Exactly these (`--nameserver`): every audited zone is asked of all of them.
    Given(Vec<SocketAddr>),
    /// Found through the zone's NS RRset, asked of this recursive resolver; discovered servers
    /// are queried on `port`.
    Discover { resolver: SocketAddr, port: u16 },
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Request {
    pub domains: Vec<Fqdn>,
    pub servers: Servers,
    /// Zones to read even without an audited domain in them (a topology's zones, for the
    /// federation record).
    pub extra_zones: Vec<Fqdn>,
    /// RRsets to read besides those the rules need (a topology's managed keys, for drift).
    pub extra_keys: BTreeSet<RrKey>,
    pub settings: BatchSettings,
}

/// What one server said to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Answered(Response),
    /// No usable answer (timeout after every retry, network error, malformed).
    Failed(String),
}

/// Everything read, keyed by question; the rules read only this.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The zone of each audited name, or why it is unknown (hashed, like `servers`).
    pub zone_of: hashbrown::HashMap<Fqdn, Result<Fqdn, String>>,
    /// The authoritative servers of each zone, in the order they are compared. (A hash map:
    /// [`Snapshot::known_zone`] looks each suffix of every target up in it, and a sorted map
    /// of ten thousand zones compared names all the way down its tree.)
    pub servers: hashbrown::HashMap<Fqdn, Vec<SocketAddr>>,
    /// Every answer this snapshot read, per (name, type), one entry per server asked; read
    /// them through [`Snapshot::all`] and [`Snapshot::answer`], which also see the answers of
    /// the other parts of an audit read in parts. (hashbrown's map: looked up by a borrowed
    /// name, see [`NameType`], and hashed with foldhash: the rules look up every audited name
    /// several times.)
    pub lookups: Lookups,
    /// The other parts' answers when an audit was read in parts ([`Snapshot::absorb`]),
    /// looked up after `lookups`: moving them all into one table cost as much as a rule check.
    more_lookups: Vec<Lookups>,
    /// Servers that answered no question of a whole round (down or unreachable).
    pub down: HashSet<SocketAddr>,
    /// Given servers that refused a zone (with the RCODE): not compared for it.
    pub not_serving: BTreeMap<Fqdn, Vec<(SocketAddr, u8)>>,
    /// Servers this host cannot send to at all (their address family is unavailable here: an
    /// IPv6 server seen from an IPv4-only host), with why. They are not asked and not
    /// compared; the audit says so as info, since it tells nothing about the server.
    pub family_unavailable: BTreeMap<SocketAddr, String>,
    pub stats: BatchStats,
}

/// Answers per (name, type), one entry per server asked.
pub type Lookups = hashbrown::HashMap<(Fqdn, QueryType), Vec<(SocketAddr, Lookup)>>;

/// A `lookups` key made of a borrowed name, hashed and compared as the owned key is: a
/// lookup copies no name.
#[derive(Hash)]
struct NameType<'a>(&'a Fqdn, QueryType);

impl Equivalent<(Fqdn, QueryType)> for NameType<'_> {
    fn equivalent(&self, key: &(Fqdn, QueryType)) -> bool {
        *self.0 == key.0 && self.1 == key.1
    }
}

impl Snapshot {
    /// Records one server's answer (used by collection and by unit tests of the rules).
    pub fn insert(&mut self, server: SocketAddr, name: &Fqdn, qtype: QueryType, lookup: Lookup) {
        // An answer another part read moves here first, so that this one joins it.
        for more in &mut self.more_lookups {
            if let Some((key, earlier)) = more.remove_entry(&NameType(name, qtype)) {
                self.lookups.insert(key, earlier);
                break;
            }
        }
        // One hash of the name, which is copied only the first time it is recorded.
        match self.lookups.entry_ref(&NameType(name, qtype)) {
            hashbrown::hash_map::EntryRef::Occupied(entry) => {
                let lookups = entry.into_mut();
                lookups.retain(|(s, _)| *s != server);
                lookups.push((server, lookup));
            }
            hashbrown::hash_map::EntryRef::Vacant(entry) => {
                entry.insert_with_key((name.clone(), qtype), vec![(server, lookup)]);
            }
        }
    }

    /// Records the outcome of one question; false when the server did not answer it. A
    /// question that could not be sent for want of its address family records no lookup (there
    /// is nothing to compare) but the server, in `family_unavailable`; `None` then.
    pub fn record(
        &mut self,
        question: &Question,
        reply: Result<Response, DnsError>,
    ) -> Option<bool> {
        let lookup = match reply {
            Ok(r) => Lookup::Answered(r),
            Err(e) if e.is_family_unavailable() => {
                self.family_unavailable
                    .entry(question.server)
                    .or_insert_with(|| e.to_string());
                return None;
            }
            Err(e) => Lookup::Failed(e.to_string()),
        };
        let answered = matches!(lookup, Lookup::Answered(_));
        self.insert(question.server, &question.name, question.qtype, lookup);
        Some(answered)
    }

    /// The first server's answer to `name`/`qtype` (the one the rules judge; rule 16 compares
    /// the others with it). A server that failed is skipped in favour of one that answered.
    pub fn answer(&self, name: &Fqdn, qtype: QueryType) -> Option<&Response> {
        self.get(name, qtype)?.iter().find_map(|(_, l)| match l {
            Lookup::Answered(r) => Some(r),
            Lookup::Failed(_) => None,
        })
    }

    /// Every server's answer to `name`/`qtype`.
    pub fn all(&self, name: &Fqdn, qtype: QueryType) -> &[(SocketAddr, Lookup)] {
        self.get(name, qtype).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The answers to `name`/`qtype`, this snapshot's own first.
    fn get(&self, name: &Fqdn, qtype: QueryType) -> Option<&Vec<(SocketAddr, Lookup)>> {
        let key = NameType(name, qtype);
        self.lookups
            .get(&key)
            .or_else(|| self.more_lookups.iter().find_map(|more| more.get(&key)))
    }

    /// Takes in another part's answers, after this one's: where both read the same question,
    /// this snapshot's reading is kept, as one reading would have kept its first answer.
    pub fn absorb(&mut self, lookups: Lookups) {
        self.more_lookups.push(lookups);
    }

    /// The zone among the known ones that holds `name` (the longest).
    pub fn known_zone(&self, name: &Fqdn) -> Option<&Fqdn> {
        // Walk up the labels and look each suffix up: a scan of all zones per name would be
        // quadratic with thousands of one-domain zones.
        let text = name.as_str();
        let mut at = 0;
        loop {
            let suffix = &text[at..];
            if let Some((zone, _)) = self.servers.get_key_value(suffix) {
                return Some(zone);
            }
            match suffix.find('.') {
                Some(dot) if dot + 1 < suffix.len() => at += dot + 1,
                _ => return None,
            }
        }
    }

    /// The servers to ask about `name`: those of its zone, or `fallback`'s.
    fn servers_for(&self, name: &Fqdn, fallback: &Fqdn) -> &[SocketAddr] {
        self.known_zone(name)
            .or(Some(fallback))
            .and_then(|z| self.servers.get(z))
            .map_or(&[], Vec::as_slice)
    }
}

/// `_xmpp-server._tcp.<domain>`.
pub fn xmpp_owner(domain: &Fqdn) -> Fqdn {
    domain.prepend(XMPP_SERVER_SRV)
}

/// `_xmpps-server._tcp.<domain>`.
pub fn xmpps_owner(domain: &Fqdn) -> Fqdn {
    domain.prepend(XMPPS_SERVER_SRV)
}

/// Where people put the SRV record by mistake (rule 10), asked only when the right owner has
/// none: the domain's labels between service and protocol (`_xmpp-server.sip._tcp.contoso.com`
/// for `sip.contoso.com`, what a "service" field typed as `_xmpp-server.sip` gives), and the
/// zone appended twice (a relative name written where an absolute one was meant).
pub fn misplaced_owners(domain: &Fqdn, zone: &Fqdn) -> Vec<Fqdn> {
    let mut owners = Vec::new();
    if let Some(relative) = domain.relative_to(zone).filter(|r| *r != "@") {
        owners.push(Fqdn::from_absolute(&format!(
            "_xmpp-server.{relative}._tcp.{zone}"
        )));
    }
    let doubled = format!("{}{}", xmpp_owner(domain), zone);
    if doubled.len() <= 254 {
        owners.push(Fqdn::from_absolute(&doubled));
    }
    owners
}

/// True when a target name is written as an IPv4/IPv6 address (rule 5).
pub fn is_ip_literal(target: &Fqdn) -> bool {
    target.bare().parse::<std::net::IpAddr>().is_ok()
}

/// The SRV records of an answer (those owned by the asked name).
pub fn srv_records<'a>(
    response: &'a Response,
    owner: &'a Fqdn,
) -> impl Iterator<Item = (u32, &'a crate::records::Srv)> + 'a {
    response.answers.iter().filter_map(move |r| match &r.data {
        batch::RecordData::Known(Rdata::Srv(srv)) if &r.name == owner => Some((r.ttl, srv)),
        _ => None,
    })
}

fn qtype_of(rtype: RecordType) -> QueryType {
    match rtype {
        RecordType::A => QueryType::A,
        RecordType::Aaaa => QueryType::Aaaa,
        RecordType::Srv => QueryType::Srv,
        RecordType::Cname => QueryType::Cname,
    }
}

/// Why a server found down is not asked (after its address).
const NOT_ASKED_AGAIN: &str = "answered no question earlier in this audit; not asked again";

/// Questions deduplicated, in first-asked order.
#[derive(Default)]
struct Round {
    questions: Vec<Question>,
    /// Indices into `questions`, by the question's hash: each question is stored once.
    seen: hashbrown::HashTable<usize>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Round {
    fn with_capacity(questions: usize) -> Self {
        Round {
            questions: Vec::with_capacity(questions),
            seen: hashbrown::HashTable::with_capacity(questions),
            hasher: Default::default(),
        }
    }

    fn ask(&mut self, servers: &[SocketAddr], name: &Fqdn, qtype: QueryType) {
        use std::hash::BuildHasher;
        for server in servers {
            let hash = self.hasher.hash_one((server, name, qtype));
            let questions = &self.questions;
            let asked = |&i: &usize| {
                let q: &Question = &questions[i];
                q.server == *server && q.name == *name && q.qtype == qtype
            };
            if self.seen.find(hash, asked).is_some() {
                continue;
            }
            let hasher = &self.hasher;
            self.seen.insert_unique(hash, questions.len(), |&i| {
                let q: &Question = &questions[i];
                hasher.hash_one((&q.server, &q.name, q.qtype))
            });
            self.questions.push(Question {
                server: *server,
                name: name.clone(),
                qtype,
                recursion_desired: false,
            });
        }
    }

    /// [`Round::ask`] of the servers whose answer to `name`/`qtype` is not read yet.
    fn ask_unread(
        &mut self,
        snapshot: &Snapshot,
        servers: &[SocketAddr],
        name: &Fqdn,
        qtype: QueryType,
    ) {
        let read = snapshot.all(name, qtype);
        if read.is_empty() {
            return self.ask(servers, name, qtype);
        }
        let unread: Vec<SocketAddr> = servers
            .iter()
            .filter(|server| !read.iter().any(|(s, _)| s == *server))
            .copied()
            .collect();
        self.ask(&unread, name, qtype);
    }

    fn run(
        self,
        snapshot: &mut Snapshot,
        settings: &BatchSettings,
        progress: &mut dyn FnMut(Progress),
        stage: &'static str,
    ) {
        // A server that answered nothing in an earlier round is not asked again: each round
        // would otherwise wait out every attempt for it once more. Its questions are recorded
        // as failed, so rule 16 and "reach" still report it.
        // A server whose address family this host lacks is not asked again either.
        let (asked, skipped): (Vec<Question>, Vec<Question>) = self
            .questions
            .into_iter()
            .filter(|q| !snapshot.family_unavailable.contains_key(&q.server))
            .partition(|q| !snapshot.down.contains(&q.server));
        for q in skipped {
            let lookup = Lookup::Failed(format!("{} {NOT_ASKED_AGAIN}", q.server));
            snapshot.insert(q.server, &q.name, q.qtype, lookup);
        }
        let total = asked.len();
        let started = std::time::Instant::now();
        let (replies, stats) = batch::resolve_all(&asked, settings, &mut |done| {
            progress(Progress { stage, done, total })
        });
        tracing::info!(
            "{stage}: {total} questions in {:?} ({} retries, {} over TCP, {} unanswered)",
            started.elapsed(),
            stats.retries,
            stats.tcp,
            stats.unanswered
        );
        snapshot.stats.add(&stats);
        snapshot.lookups.reserve(asked.len());
        let mut answered: HashMap<SocketAddr, bool> = HashMap::new();
        for (q, reply) in asked.iter().zip(replies) {
            if let Some(got) = snapshot.record(q, reply) {
                *answered.entry(q.server).or_insert(false) |= got;
            }
        }
        for (server, any) in answered {
            if !any {
                tracing::warn!("{server} answered none of {stage}; it is not asked again");
                snapshot.down.insert(server);
            }
        }
    }
}

/// How far a collection is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub stage: &'static str,
    pub done: usize,
    pub total: usize,
}

/// Asks every server of every zone not asked yet for the zone's SOA. With `--nameserver`, a
/// server that answers REFUSED or NOTAUTH is not authoritative for that zone (it serves other
/// zones of the audit): it is left out of the zone's servers, and recorded. Discovered servers
/// stay: an NS-listed server that refuses its zone is a lame delegation, which rule 16 reports.
fn read_serials(
    snapshot: &mut Snapshot,
    servers: &Servers,
    settings: &BatchSettings,
    progress: &mut dyn FnMut(Progress),
) {
    let mut round = Round::default();
    for (zone, zone_servers) in &snapshot.servers {
        // The servers whose SOA is not known yet (the first given server's was read with the
        // zone when the audited name is the zone's apex).
        let known = snapshot.all(zone, QueryType::Soa);
        let missing: Vec<SocketAddr> = zone_servers
            .iter()
            .filter(|server| !known.iter().any(|(s, _)| s == *server))
            .copied()
            .collect();
        round.ask(&missing, zone, QueryType::Soa);
    }
    round.run(snapshot, settings, progress, "reading serials");
    if !matches!(servers, Servers::Given(_)) {
        return;
    }
    let zones: Vec<Fqdn> = snapshot.servers.keys().cloned().collect();
    for zone in zones {
        let refused: Vec<(SocketAddr, u8)> = snapshot
            .all(&zone, QueryType::Soa)
            .iter()
            .filter_map(|(server, lookup)| match lookup {
                Lookup::Answered(r) if r.rcode == 5 || r.rcode == 9 => Some((*server, r.rcode)),
                _ => None,
            })
            .collect();
        if refused.is_empty() {
            continue;
        }
        let kept: Vec<SocketAddr> = snapshot.servers[&zone]
            .iter()
            .copied()
            .filter(|s| !refused.iter().any(|(r, _)| r == s))
            .collect();
        if kept.is_empty() {
            continue;
        }
        snapshot.servers.insert(zone.clone(), kept);
        if let Some(entry) = snapshot.lookups.get_mut(&(zone.clone(), QueryType::Soa)) {
            entry.retain(|(s, _)| !refused.iter().any(|(r, _)| r == s));
        }
        snapshot.not_serving.insert(zone, refused);
    }
}

/// The zones found. With `keep` (the server asked), a reply that is a zone's own SOA (the name
/// asked was the apex) is recorded as that server's SOA of the zone, so that `read_serials`
/// does not ask the same question again. Only the first server's are kept: a zone's answers
/// are recorded in the order of its servers, and the first one's come first.
fn keep_apex_soa(
    snapshot: &mut Snapshot,
    names: &[Fqdn],
    found: Vec<authority::ZoneReply>,
    keep: Option<SocketAddr>,
) -> Vec<Result<Fqdn, AuthorityError>> {
    let mut zones = Vec::with_capacity(found.len());
    for (name, (zone, reply)) in names.iter().zip(found) {
        if let (Some(server), Ok(zone), Some(reply)) = (keep, &zone, reply) {
            if zone == name {
                snapshot.insert(server, zone, QueryType::Soa, Lookup::Answered(reply));
            }
        }
        zones.push(zone);
    }
    zones
}

/// The first given server's first batch: each name's SOA (which finds its zone), and right
/// after it the two SRV RRsets of each audited domain among the names (the first `audited`),
/// recorded in the snapshot. Those would otherwise be a round of their own once the zones are
/// known, asked of this same server first: asked here, one round and its wait are saved, and
/// each zone's three questions reach the server together, as a zone's questions do in dnsperf
/// (10,000 one-domain zones on BIND: SOA and SRV rounds 0.30 s apart, 0.24 s together). What a
/// domain's zone turns out not to be served by this server is dropped again by
/// [`drop_srv_read_too_soon`], so the snapshot is what separate rounds give.
fn zones_with_srv(
    snapshot: &mut Snapshot,
    names: &[Fqdn],
    audited: usize,
    server: SocketAddr,
    settings: &BatchSettings,
    progress: &mut dyn FnMut(Progress),
) -> Vec<authority::ZoneReply> {
    let mut questions = Vec::with_capacity(names.len() + 2 * audited);
    for (i, name) in names.iter().enumerate() {
        questions.push(authority::soa_question(name, server, false));
        if i < audited {
            for owner in [xmpp_owner(name), xmpps_owner(name)] {
                questions.push(Question {
                    server,
                    name: owner,
                    qtype: QueryType::Srv,
                    recursion_desired: false,
                });
            }
        }
    }
    let (stage, total) = ("reading zones and SRV records", questions.len());
    let (replies, stats) = batch::resolve_all(&questions, settings, &mut |done| {
        progress(Progress { stage, done, total })
    });
    snapshot.stats.add(&stats);
    let mut found = Vec::with_capacity(names.len());
    let mut names = names.iter();
    for (question, reply) in questions.iter().zip(replies) {
        if question.qtype == QueryType::Soa {
            let name = names.next().expect("one SOA question per name");
            found.push(authority::zone_reply(name, server, false, reply));
        } else {
            snapshot.record(question, reply);
        }
    }
    found
}

/// Drops the SRV answers [`zones_with_srv`] read from `first` for domains whose zone it turned
/// out not to serve (or no zone was found), or when it answered nothing (down): separate
/// rounds would not have asked it then, and the SRV round asks whom it should.
fn drop_srv_read_too_soon(snapshot: &mut Snapshot, domains: &[Fqdn], first: SocketAddr) {
    for domain in domains {
        let keep = match snapshot.zone_of.get(domain) {
            Some(Ok(zone)) => {
                !snapshot.down.contains(&first)
                    && snapshot
                        .servers
                        .get(zone)
                        .is_some_and(|s| s.contains(&first))
            }
            _ => false,
        };
        if keep {
            continue;
        }
        for owner in [xmpp_owner(domain), xmpps_owner(domain)] {
            let key = (owner, QueryType::Srv);
            if let Some(lookups) = snapshot.lookups.get_mut(&key) {
                lookups.retain(|(server, _)| *server != first);
                if lookups.is_empty() {
                    snapshot.lookups.remove(&key);
                }
            }
        }
    }
}

/// Finds the zone and authoritative servers of each name. With given servers, the first one
/// is asked, and the next ones only for names it could not place (it may be down). The first
/// `audited` names are audited domains: the first given server is asked their SRV RRsets in
/// the same batch (see [`zones_with_srv`]).
fn find_zones(
    snapshot: &mut Snapshot,
    names: &[Fqdn],
    audited: usize,
    servers: &Servers,
    settings: &BatchSettings,
    progress: &mut dyn FnMut(Progress),
) {
    match servers {
        Servers::Given(servers) => {
            let mut pending: Vec<Fqdn> = names.to_vec();
            let mut last_errors: BTreeMap<Fqdn, String> = BTreeMap::new();
            for (i, server) in servers.iter().enumerate() {
                if pending.is_empty() {
                    break;
                }
                if snapshot.down.contains(server) {
                    // Found down earlier in this audit (the targets' zones are found after the
                    // domains'): waiting out every attempt for it again would only repeat that.
                    let why = format!("{server} {NOT_ASKED_AGAIN}");
                    for name in &pending {
                        last_errors.insert(name.clone(), why.clone());
                    }
                    continue;
                }
                let first = (*server == servers[0]).then_some(*server);
                // Only on the first pass are the pending names all the names, in order.
                let found = if i == 0 && audited > 0 {
                    zones_with_srv(snapshot, &pending, audited, *server, settings, progress)
                } else {
                    let (found, stats) =
                        authority::zones_and_replies(&pending, *server, false, settings);
                    snapshot.stats.add(&stats);
                    found
                };
                let zones = keep_apex_soa(snapshot, &pending, found, first);
                note_unreachable(snapshot, *server, &zones);
                let mut still = Vec::new();
                for (name, zone) in pending.iter().zip(zones) {
                    match zone {
                        Ok(zone) => {
                            snapshot.servers.insert(zone.clone(), servers.clone());
                            snapshot.zone_of.insert(name.clone(), Ok(zone));
                        }
                        Err(e) => {
                            last_errors.insert(name.clone(), e.to_string());
                            still.push(name.clone());
                        }
                    }
                }
                pending = still;
            }
            for name in pending {
                let reason = last_errors.remove(&name).unwrap_or_default();
                snapshot.zone_of.insert(name, Err(reason));
            }
        }
        Servers::Discover { resolver, port } => {
            let (found, stats) = authority::discover(names, *resolver, *port, settings);
            snapshot.stats.add(&stats);
            for (name, authority) in found {
                let zone = authority.map(|a| {
                    snapshot.servers.insert(a.zone.clone(), a.addresses());
                    a.zone
                });
                snapshot
                    .zone_of
                    .insert(name, zone.map_err(|e: AuthorityError| e.to_string()));
            }
        }
    }
}

/// Notes a given server this host cannot send to at all (its address family: not a fault of
/// the server), or that answered none of the zones' questions (down).
fn note_unreachable(
    snapshot: &mut Snapshot,
    server: SocketAddr,
    zones: &[Result<Fqdn, AuthorityError>],
) {
    if let Some(Err(AuthorityError::FamilyUnavailable { reason, .. })) = zones
        .iter()
        .find(|z| matches!(z, Err(AuthorityError::FamilyUnavailable { .. })))
    {
        snapshot.family_unavailable.insert(server, reason.clone());
    } else if zones
        .iter()
        .all(|z| matches!(z, Err(AuthorityError::NoAnswer { .. })))
    {
        snapshot.down.insert(server);
    }
}

/// Reads everything the rules need for `request`.
pub fn collect(request: &Request, progress: &mut dyn FnMut(Progress)) -> Snapshot {
    let mut snapshot = Snapshot::default();
    // Room for what a domain with two pools reads (its SOA, 2 SRV RRsets, A, AAAA and TLSA of
    // 2 targets) at each given server: growing the table round by round rehashed it each time.
    let servers = match &request.servers {
        Servers::Given(given) => given.len(),
        Servers::Discover { .. } => 1,
    };
    snapshot
        .lookups
        .reserve(request.domains.len().saturating_mul(9 * servers));
    let settings = &request.settings;

    // Round 0: the zone of every audited name and its servers.
    let mut names: Vec<Fqdn> = request.domains.clone();
    for zone in &request.extra_zones {
        if !names.contains(zone) {
            names.push(zone.clone());
        }
    }
    find_zones(
        &mut snapshot,
        &names,
        request.domains.len(),
        &request.servers,
        settings,
        progress,
    );

    // Round 1: serials; given servers that refuse a zone are not among its servers.
    read_serials(&mut snapshot, &request.servers, settings, progress);
    if let Servers::Given(given) = &request.servers {
        if let Some(first) = given.first() {
            drop_srv_read_too_soon(&mut snapshot, &request.domains, *first);
        }
    }

    // Round 2: the SRV RRsets (and any extra keys).
    read_srv_records(&mut snapshot, request, progress);

    // Targets in zones not met yet (a pool FQDN in the provider's own zone): find their
    // servers too, so that their addresses are read where they are authoritative.
    let outside = targets_outside_known_zones(&snapshot, &request.domains);
    if !outside.is_empty() {
        find_zones(
            &mut snapshot,
            &outside,
            0,
            &request.servers,
            settings,
            progress,
        );
        // A target whose zone is not found stays asked of its domain's servers (they will
        // say REFUSED and the rules report "not checked"), but is not an audited name.
        for target in &outside {
            snapshot.zone_of.remove(target);
        }
        read_serials(&mut snapshot, &request.servers, settings, progress);
    }

    // Round 3: what the SRV records point at, and the fallbacks when there are none.
    read_srv_targets(&mut snapshot, request, progress);
    snapshot
}

/// Round 2: both SRV RRsets of every domain whose zone is known, and the extra keys, of each
/// server not read yet (with given servers, the first one's SRV answers came with the zones).
fn read_srv_records(
    snapshot: &mut Snapshot,
    request: &Request,
    progress: &mut dyn FnMut(Progress),
) {
    let mut round = Round::default();
    let view: &Snapshot = snapshot;
    for domain in &request.domains {
        let Some(Ok(zone)) = view.zone_of.get(domain) else {
            continue;
        };
        let servers = &view.servers[zone];
        round.ask_unread(view, servers, &xmpp_owner(domain), QueryType::Srv);
        round.ask_unread(view, servers, &xmpps_owner(domain), QueryType::Srv);
    }
    for key in &request.extra_keys {
        if let Some(zone) = view.known_zone(&key.name) {
            let servers = &view.servers[zone];
            round.ask_unread(view, servers, &key.name, qtype_of(key.rtype));
        }
    }
    round.run(snapshot, &request.settings, progress, "reading SRV records");
}

/// The real SRV targets (not `.`, not IP literals) in no zone read so far, sorted.
fn targets_outside_known_zones(snapshot: &Snapshot, domains: &[Fqdn]) -> Vec<Fqdn> {
    let mut outside: BTreeSet<Fqdn> = BTreeSet::new();
    for domain in domains {
        for owner in [xmpp_owner(domain), xmpps_owner(domain)] {
            if let Some(response) = snapshot.answer(&owner, QueryType::Srv) {
                for (_, srv) in srv_records(response, &owner) {
                    let target = &srv.target;
                    if target.as_str() != "."
                        && !is_ip_literal(target)
                        && snapshot.known_zone(target).is_none()
                    {
                        outside.insert(target.clone());
                    }
                }
            }
        }
    }
    outside.into_iter().collect()
}

/// Round 3: the addresses and TLSA of every SRV target, asked where the target is
/// authoritative; for a domain without `_xmpp-server._tcp` records, its own addresses (what
/// peers fall back to) and the misplaced owners of rule 10.
fn read_srv_targets(
    snapshot: &mut Snapshot,
    request: &Request,
    progress: &mut dyn FnMut(Progress),
) {
    // Room for two targets' A, AAAA and TLSA per domain (growing the round's table rehashed
    // it at every doubling).
    let mut round = Round::with_capacity(request.domains.len().saturating_mul(6));
    // Only read while the round is built: nothing is copied out of the snapshot.
    let view: &Snapshot = snapshot;
    for domain in &request.domains {
        let Some(Ok(zone)) = view.zone_of.get(domain) else {
            continue;
        };
        let servers = &view.servers[zone];
        let mut any_srv = false;
        for (owner, federation) in [(xmpp_owner(domain), true), (xmpps_owner(domain), false)] {
            let Some(response) = view.answer(&owner, QueryType::Srv) else {
                continue;
            };
            for (_, srv) in srv_records(response, &owner) {
                any_srv |= federation;
                let target = &srv.target;
                if target.as_str() == "." || is_ip_literal(target) {
                    continue;
                }
                let target_servers = view.servers_for(target, zone);
                round.ask(target_servers, target, QueryType::A);
                round.ask(target_servers, target, QueryType::Aaaa);
                round.ask(
                    target_servers,
                    &target.prepend("_5269._tcp"),
                    QueryType::Tlsa,
                );
            }
        }
        if !any_srv {
            round.ask(servers, domain, QueryType::A);
            round.ask(servers, domain, QueryType::Aaaa);
            for owner in misplaced_owners(domain, zone) {
                round.ask(servers, &owner, QueryType::Srv);
            }
        }
    }
    round.run(snapshot, &request.settings, progress, "reading SRV targets");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Fqdn {
        Fqdn::parse(text).unwrap()
    }

    #[test]
    fn misplaced_owner_guesses() {
        assert_eq!(
            misplaced_owners(&name("sip.contoso.com"), &name("contoso.com")),
            vec![
                name("_xmpp-server.sip._tcp.contoso.com"),
                name("_xmpp-server._tcp.sip.contoso.com.contoso.com")
            ]
        );
        assert_eq!(
            misplaced_owners(&name("contoso.com"), &name("contoso.com")),
            vec![name("_xmpp-server._tcp.contoso.com.contoso.com")]
        );
    }

    #[test]
    fn absorbed_answers_are_read_after_the_snapshots_own_and_join_new_ones() {
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "127.0.0.1:3".parse().unwrap(),
        );
        let (x, y) = (name("x.contoso.com"), name("y.contoso.com"));
        let failed = |why: &str| Lookup::Failed(why.to_string());
        let mut first = Snapshot::default();
        first.insert(a, &x, QueryType::A, failed("first part"));
        let mut second = Snapshot::default();
        second.insert(b, &x, QueryType::A, failed("second part"));
        second.insert(b, &y, QueryType::A, failed("second part"));
        first.absorb(second.lookups);
        let servers = |s: &Snapshot, n: &Fqdn| -> Vec<SocketAddr> {
            s.all(n, QueryType::A).iter().map(|(s, _)| *s).collect()
        };
        // Both read x: the first part's reading is kept. Only the second read y.
        assert_eq!(servers(&first, &x), vec![a]);
        assert_eq!(servers(&first, &y), vec![b]);
        // A later answer to y joins the second part's, it does not hide it.
        first.insert(c, &y, QueryType::A, failed("later"));
        assert_eq!(servers(&first, &y), vec![b, c]);
        assert!(first.all(&name("z.contoso.com"), QueryType::A).is_empty());
    }

    #[test]
    fn ip_literal_targets() {
        assert!(is_ip_literal(&Fqdn::from_absolute("192.0.2.1.")));
        assert!(!is_ip_literal(&name("edge.contoso.com")));
    }
}
