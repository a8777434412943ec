//! moto's server (`moto[server]` from PyPI, installed by .ci/run into `target/moto-venv`)
//! standing in for Route 53 on 127.0.0.1, and a few direct calls to it for setting up zones
//! and making "someone else's" changes. moto does not check SigV4 signatures; it does check
//! that a `DELETE` matches exactly. Unlike Route 53 it accepts a `CREATE` of an RRset that
//! exists (and overwrites it).

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use super::process::{
    free_port, server_dir, start_with_retries, PortClash, ServerProcess, Transport, LOOPBACK,
};

const CLASH_MARKERS: [&str; 2] = ["Address already in use", "address already in use"];
/// Credential scope moto reads the service from (it does not check the signature).
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0";

/// `target/moto-venv/bin/moto_server`, or `XMPPDNS_MOTO_SERVER`.
pub fn moto_server_program() -> PathBuf {
    let path = std::env::var_os("XMPPDNS_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server")
        });
    assert!(
        path.exists(),
        "{} is missing: the Route 53 tests need moto's server. Install it with\n  python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'\n(as .ci/run does; on Debian `apt-get install python3-venv` first), or point XMPPDNS_MOTO_SERVER at a moto_server",
        path.display()
    );
    path
}

/// A running moto server, stopped on drop.
pub struct Moto {
    process: ServerProcess,
    port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        start_with_retries("moto_server", Moto::try_start)
    }

    fn try_start() -> Result<Moto, PortClash> {
        let program = moto_server_program();
        let port = free_port(Transport::Tcp);
        let port_text = port.to_string();
        let args = [
            OsStr::new("-H"),
            OsStr::new("127.0.0.1"),
            OsStr::new("-p"),
            OsStr::new(&port_text),
        ];
        let mut process = ServerProcess::spawn(
            "moto_server",
            server_dir("moto"),
            &program,
            &args,
            Vec::new(),
        );
        let addr = SocketAddr::from((LOOPBACK, port));
        process.wait_ready(&CLASH_MARKERS, &[], Some("Running on"), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })?;
        Ok(Moto { process, port })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many HTTP requests moto has logged (one line each in its output).
    pub fn request_count(&self) -> usize {
        self.process
            .logs()
            .lines()
            .filter(|l| l.contains("\"GET ") || l.contains("\"POST ") || l.contains("\"DELETE "))
            .count()
    }

    /// One request to moto as it is, with the status and body.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        let url = format!("{}{path}", self.endpoint());
        let result = match body {
            None => agent
                .get(&url)
                .header("Authorization", AUTHORIZATION)
                .call(),
            Some(body) => agent
                .post(&url)
                .header("Authorization", AUTHORIZATION)
                .content_type("application/xml")
                .send(body.to_string()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    }

    /// Creates a public hosted zone; returns its id (without `/hostedzone/`).
    pub fn create_zone(&self, name: &str) -> String {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>{name}</Name><CallerReference>{name}-{}</CallerReference></CreateHostedZoneRequest>",
            self.port
        );
        let (status, text) = self.call("POST", "/2013-04-01/hostedzone", Some(&body));
        assert!(
            status == 201 || status == 200,
            "CreateHostedZone {name}: {status} {text}"
        );
        let start = text.find("<Id>/hostedzone/").expect("an Id") + "<Id>/hostedzone/".len();
        text[start..start + text[start..].find('<').unwrap()].to_string()
    }

    /// One change batch (`action`, name, type, ttl, values) sent as someone else would;
    /// returns the status and body.
    pub fn change(
        &self,
        zone_id: &str,
        changes: &[(&str, &str, &str, u32, &[&str])],
    ) -> (u16, String) {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch><Changes>");
        for (action, name, rtype, ttl, values) in changes {
            body.push_str(&format!("<Change><Action>{action}</Action><ResourceRecordSet><Name>{name}</Name><Type>{rtype}</Type><TTL>{ttl}</TTL><ResourceRecords>"));
            for value in *values {
                body.push_str(&format!(
                    "<ResourceRecord><Value>{value}</Value></ResourceRecord>"
                ));
            }
            body.push_str("</ResourceRecords></ResourceRecordSet></Change>");
        }
        body.push_str("</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>");
        self.call(
            "POST",
            &format!("/2013-04-01/hostedzone/{zone_id}/rrset/"),
            Some(&body),
        )
    }

    /// Every RRset of the zone as `name type ttl [values]`, sorted, without SOA and NS.
    pub fn rrsets(&self, zone_id: &str) -> Vec<String> {
        let (status, text) = self.call(
            "GET",
            &format!("/2013-04-01/hostedzone/{zone_id}/rrset?maxitems=1000"),
            None,
        );
        assert_eq!(status, 200, "{text}");
        let mut out = Vec::new();
        for set in text.split("<ResourceRecordSet>").skip(1) {
            let field = |tag: &str| {
                set.split(&format!("<{tag}>"))
                    .skip(1)
                    .map(|s| s[..s.find('<').unwrap_or(s.len())].to_string())
                    .collect::<Vec<_>>()
            };
            let rtype = field("Type").join("");
            if rtype == "SOA" || rtype == "NS" {
                continue;
            }
            let mut values = field("Value");
            values.sort();
            out.push(format!(
                "{} {rtype} {} [{}]",
                field("Name").join(""),
                field("TTL").join(""),
                values.join(", ")
            ));
        }
        out.sort();
        out
    }
}

/// What the proxy does to the next change batch (`POST .../rrset/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFault {
    /// Forwarded to moto (so it is applied), then the connection closes with no answer.
    LoseAnswer,
    /// Answered 400 `Throttling` without forwarding.
    Throttle,
}

/// A loopback proxy in front of moto that can spoil the next change batch.
pub struct FaultyProxy {
    addr: std::net::SocketAddr,
    faults: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<BatchFault>>>,
    /// Every request that reached the proxy, `METHOD path`.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FaultyProxy {
    pub fn start(moto: &Moto) -> FaultyProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let proxy = FaultyProxy {
            addr,
            faults: Default::default(),
            log: Default::default(),
        };
        let (faults, log, upstream) = (proxy.faults.clone(), proxy.log.clone(), moto.endpoint());
        // The thread ends with the test process; each connection is served in turn.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve_proxied(stream, &upstream, &faults, &log);
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, fault: BatchFault) {
        self.faults.lock().unwrap().push_back(fault);
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve_proxied(
    stream: TcpStream,
    upstream: &str,
    faults: &std::sync::Mutex<std::collections::VecDeque<BatchFault>>,
    log: &std::sync::Mutex<Vec<String>>,
) {
    use std::io::Write;
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(request) = super::azure::read_request(&mut reader) {
        log.lock()
            .unwrap()
            .push(format!("{} {}", request.method, request.path));
        let fault = if request.method == "POST" && request.path.ends_with("/rrset/") {
            faults.lock().unwrap().pop_front()
        } else {
            None
        };
        let (status, body) = if fault == Some(BatchFault::Throttle) {
            (400, "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>".to_string())
        } else {
            forward(upstream, &request)
        };
        if fault == Some(BatchFault::LoseAnswer) {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn forward(upstream: &str, request: &super::azure::Request) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut url = format!("{upstream}{}", request.path);
    if !request.query.is_empty() {
        url = format!("{url}?{}", request.query);
    }
    let result = if request.method == "POST" {
        agent
            .post(&url)
            .header("Authorization", AUTHORIZATION)
            .content_type("application/xml")
            .send(request.body.clone())
    } else {
        agent
            .get(&url)
            .header("Authorization", AUTHORIZATION)
            .call()
    };
    match result {
        Ok(mut response) => (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (502, e.to_string()),
    }
}
