//! A small stand-in for Azure DNS on 127.0.0.1, written from Microsoft's published OpenAPI
//! description of the record-set API (api-version 2018-05-01, `dns.json` and its examples)
//! and the identity platform's client-credentials grant. It is NOT Azure: it keeps record
//! sets in memory and gives them the documented semantics the provider relies on:
//! - `GET .../dnsZones/{zone}/{type}/{name}`: 200 with `etag` (body and header), 404
//!   `NotFound` when absent, 404 `ParentResourceNotFound` for an unknown zone;
//! - `PUT` with `If-Match: <etag>` (412 `PreconditionFailed` when it differs or the set is
//!   absent) or `If-None-Match: *` (412 when the set exists), 201 on create, 200 on update;
//! - `DELETE` with `If-Match` (412 when it differs), 200, or 204 when absent;
//! - 401 `AuthenticationFailed` without the right bearer token; error bodies are
//!   `{"error": {"code", "message"}}` as in the spec's examples;
//! - faults on demand: 429 with `Retry-After`, a write committed whose answer is lost (the
//!   connection closes), a write committed then answered 504.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
pub const RESOURCE_GROUP: &str = "rg-uc";
pub const TENANT: &str = "contoso-tenant";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "azure-client-s3cret-xmppdns-test";
/// The token the stand-in hands out and accepts.
pub const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.standin-access-t0ken";

/// A fault for the next request it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next API request is answered 429 with this `Retry-After` (seconds), not processed.
    TooManyRequests(u64),
    /// The next write is committed, then the connection closes with no answer.
    LoseAnswer,
    /// The next write is committed, then answered 504 (a gateway that gave up).
    GatewayTimeout,
    /// The next write is refused 412 as if someone else had just written the set.
    PreconditionFailed,
}

#[derive(Default)]
struct State {
    zones: Vec<String>,
    /// (zone, TYPE, relative name) -> (etag, properties).
    sets: BTreeMap<(String, String, String), (String, Value)>,
    faults: VecDeque<Fault>,
    next_etag: u64,
    /// `METHOD path` of every request, in order.
    log: Vec<String>,
}

impl State {
    fn etag(&mut self) -> String {
        self.next_etag += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            self.next_etag, self.next_etag
        )
    }
}

pub struct AzureStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One HTTP request as read off the wire.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back (None: close without answering).
type Reply = Option<(u16, Vec<(String, String)>, String)>;

impl AzureStandIn {
    /// Serves `zones` (names without the final dot) in the subscription and resource group.
    pub fn start(zones: &[&str]) -> AzureStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve(listener, s, st));
        AzureStandIn {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Every request so far, `METHOD path`.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Someone else's write: sets the record set (zone without the final dot, type, relative
    /// name) to `properties`, with a new ETag.
    pub fn put(&self, zone: &str, rtype: &str, name: &str, properties: Value) {
        let mut state = self.state.lock().unwrap();
        let etag = state.etag();
        state
            .sets
            .insert((zone.into(), rtype.into(), name.into()), (etag, properties));
    }

    /// Every record set as `name TYPE ttl [records]` (records as JSON, sorted).
    pub fn sets(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .sets
            .iter()
            .map(|((zone, rtype, name), (_, p))| {
                let mut records: Vec<String> = p
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| k.ends_with("Records") || k.as_str() == "CNAMERecord")
                    .flat_map(|(_, v)| match v {
                        Value::Array(a) => a.iter().map(Value::to_string).collect::<Vec<_>>(),
                        other => vec![other.to_string()],
                    })
                    .collect();
                records.sort();
                let fqdn = if name == "@" {
                    zone.clone()
                } else {
                    format!("{name}.{zone}")
                };
                format!("{fqdn} {rtype} {} [{}]", p["TTL"], records.join(", "))
            })
            .collect()
    }
}

impl Drop for AzureStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = state.clone();
                std::thread::spawn(move || connection(stream, &state));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return,
        }
    }
}

/// Answers requests on one connection until the client closes it.
fn connection(stream: TcpStream, state: &Mutex<State>) {
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        let reply = handle(&request, state);
        let Some((status, headers, body)) = reply else {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        };
        let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n", body.len());
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        // One write: a head and body sent apart meet the peer's delayed ACK (40 ms each).
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body); `None` at the end of the connection.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (n, v) = header.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Some((
        status,
        Vec::new(),
        json!({"error": {"code": code, "message": message}}).to_string(),
    ))
}

fn handle(request: &Request, state: &Mutex<State>) -> Reply {
    let mut state = state.lock().unwrap();
    state
        .log
        .push(format!("{} {}", request.method, request.path));
    if request.method == "POST" && request.path == format!("/{TENANT}/oauth2/v2.0/token") {
        return token(&request.body);
    }
    if request.header("Authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
    }
    if !request
        .query
        .split('&')
        .any(|p| p == "api-version=2018-05-01")
    {
        return error(
            400,
            "InvalidApiVersionParameter",
            "The api-version is missing or not supported; use 2018-05-01.",
        );
    }
    let prefix = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/dnsZones/");
    let Some(rest) = request.path.strip_prefix(&prefix) else {
        return error(
            404,
            "ResourceGroupNotFound",
            &format!(
                "Resource group or subscription in {} not found.",
                request.path
            ),
        );
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let [zone, rtype, name] = segments[..] else {
        return error(404, "NotFound", "not a record set path");
    };
    if !state.zones.iter().any(|z| z == zone) {
        return error(404, "ParentResourceNotFound", &format!("Can not perform requested operation on nested resource. Parent resource '{zone}' not found."));
    }
    let write = request.method != "GET";
    let fault = match state.faults.front() {
        Some(Fault::TooManyRequests(_)) => state.faults.pop_front(),
        Some(_) if write => state.faults.pop_front(),
        _ => None,
    };
    if let Some(Fault::TooManyRequests(seconds)) = fault {
        let mut reply = error(429, "TooManyRequests", "The request is being throttled.").unwrap();
        reply.1.push(("Retry-After".into(), seconds.to_string()));
        return Some(reply);
    }
    if fault == Some(Fault::PreconditionFailed) {
        return error(412, "PreconditionFailed", "The Record set cannot be updated because the ETag does not match (a concurrent change).");
    }
    let key = (zone.to_string(), rtype.to_string(), name.to_string());
    let reply = record_set(request, &mut state, key);
    match fault {
        Some(Fault::LoseAnswer) => None,
        Some(Fault::GatewayTimeout) => error(
            504,
            "GatewayTimeout",
            "The gateway did not receive a response in time.",
        ),
        _ => reply,
    }
}

fn token(body: &str) -> Reply {
    let form: BTreeMap<&str, &str> = body.split('&').filter_map(|p| p.split_once('=')).collect();
    let secret = form.get("client_secret").map(|s| s.replace("%2D", "-"));
    if form.get("grant_type") != Some(&"client_credentials")
        || form.get("client_id") != Some(&CLIENT_ID)
        || secret.as_deref() != Some(CLIENT_SECRET)
    {
        let e = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."});
        return Some((401, Vec::new(), e.to_string()));
    }
    let ok = json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN});
    Some((200, Vec::new(), ok.to_string()))
}

fn record_set(request: &Request, state: &mut State, key: (String, String, String)) -> Reply {
    let current = state.sets.get(&key).cloned();
    let body = |etag: &str, properties: &Value| {
        let (zone, rtype, name) = &key;
        json!({
            "id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/dnsZones/{zone}/{rtype}/{name}"),
            "name": name, "type": format!("Microsoft.Network/dnsZones/{rtype}"), "etag": etag,
            "properties": properties,
        })
        .to_string()
    };
    let etag_header = |etag: &str| vec![("ETag".to_string(), etag.to_string())];
    let if_match = request.header("If-Match");
    let precondition = || {
        error(412, "PreconditionFailed", &format!("The Record set {} of type {} cannot be updated because the ETag does not match (or the record set does not exist).", key.2, key.1))
    };
    match request.method.as_str() {
        "GET" => match current {
            Some((etag, p)) => Some((200, etag_header(&etag), body(&etag, &p))),
            None => error(404, "NotFound", &format!("The resource record '{}' does not exist in resource group '{RESOURCE_GROUP}' of subscription '{SUBSCRIPTION}'.", key.2)),
        },
        "PUT" => {
            let matches = match (if_match, request.header("If-None-Match"), &current) {
                (Some(m), _, Some((etag, _))) => m == etag,
                (Some(_), _, None) => false,
                (None, Some("*"), existing) => existing.is_none(),
                (None, _, _) => true,
            };
            if !matches {
                return precondition();
            }
            let sent: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            let mut properties = sent["properties"].clone();
            let (zone, _, name) = &key;
            let fqdn = if name == "@" { format!("{zone}.") } else { format!("{name}.{zone}.") };
            properties["fqdn"] = json!(fqdn);
            properties["provisioningState"] = json!("Succeeded");
            let etag = state.etag();
            state.sets.insert(key.clone(), (etag.clone(), properties.clone()));
            let status = if current.is_some() { 200 } else { 201 };
            Some((status, etag_header(&etag), body(&etag, &properties)))
        }
        "DELETE" => match (&current, if_match) {
            (None, None) => Some((204, Vec::new(), String::new())),
            (Some((etag, _)), Some(m)) if m != etag => precondition(),
            (None, Some(_)) => precondition(),
            _ => {
                state.sets.remove(&key);
                Some((200, Vec::new(), String::new()))
            }
        },
        _ => error(405, "MethodNotAllowed", "method not allowed"),
    }
}
