//! The port-5269 probe against a real Prosody, a closed port, a listener that answers garbage
//! and one that never answers.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use support::{free_port, Prosody, Transport, LOOPBACK};
use xmppdns::probe::{probe, probe_all, ProbeStatus};

const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn prosody_answers_as_xmpp_with_starttls() {
    let prosody = Prosody::start("contoso.com");
    let result = probe(prosody.addr(), "contoso.com", TIMEOUT);
    assert_eq!(result.status, ProbeStatus::Xmpp, "{result:?}");
    assert!(result.is_xmpp());
    assert!(result.starttls, "Prosody requires TLS on s2s: {result:?}");
    assert_eq!(result.from.as_deref(), Some("contoso.com"));
    assert_eq!(result.stream_error, None);
    assert!(result.connect_ms.is_some());
    assert!(
        result.detail.contains("STARTTLS offered"),
        "{}",
        result.detail
    );
}

#[test]
fn a_domain_prosody_does_not_serve_is_xmpp_with_a_stream_error() {
    let prosody = Prosody::start("contoso.com");
    let result = probe(prosody.addr(), "not-served.example", TIMEOUT);
    assert_eq!(result.status, ProbeStatus::Xmpp, "{result:?}");
    assert_eq!(
        result.stream_error.as_deref(),
        Some("host-unknown"),
        "{result:?}"
    );
    assert!(result.detail.contains("host-unknown"), "{}", result.detail);
}

#[test]
fn a_closed_port_is_reported_as_closed() {
    let port = free_port(Transport::Tcp);
    let result = probe(SocketAddr::from((LOOPBACK, port)), "contoso.com", TIMEOUT);
    assert_eq!(result.status, ProbeStatus::Closed, "{result:?}");
    assert!(!result.is_xmpp());
    assert!(result.detail.contains("refused"), "{}", result.detail);
    assert_eq!(result.connect_ms, None);
}

/// A listener that reads the header and answers like a web server.
fn garbage_listener() -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept the probe");
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 512];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    (addr, handle)
}

#[test]
fn a_listener_answering_garbage_is_not_xmpp() {
    let (addr, listener) = garbage_listener();
    let result = probe(addr, "contoso.com", TIMEOUT);
    listener.join().unwrap();
    assert_eq!(result.status, ProbeStatus::NotXmpp, "{result:?}");
    assert!(!result.starttls);
    assert!(
        result.detail.contains("not XMPP") && result.detail.contains("HTTP/1.1 400"),
        "{}",
        result.detail
    );
}

#[test]
fn a_listener_that_never_answers_times_out_in_bounded_time() {
    let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let short = Duration::from_millis(300);
    // The kernel completes the handshake from the backlog; nobody ever reads or writes.
    let result = probe(addr, "contoso.com", short);
    assert_eq!(result.status, ProbeStatus::Timeout, "{result:?}");
    assert!(
        result.detail.contains("no answer within 300 ms"),
        "{}",
        result.detail
    );
    assert!(result.total_ms < 2_000, "took {} ms", result.total_ms);
    drop(listener);
}

#[test]
fn probe_all_keeps_input_order() {
    let prosody = Prosody::start("contoso.com");
    let closed = SocketAddr::from((LOOPBACK, free_port(Transport::Tcp)));
    let targets = vec![
        (closed, "contoso.com".to_string()),
        (prosody.addr(), "contoso.com".to_string()),
    ];
    let results = probe_all(&targets, TIMEOUT);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].address, closed);
    assert_eq!(results[0].status, ProbeStatus::Closed);
    assert_eq!(results[1].address, prosody.addr());
    assert_eq!(results[1].status, ProbeStatus::Xmpp);
}
