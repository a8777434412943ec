//! The port-5269 probe against a real Prosody, a closed port, a listener that answers garbage
//! and one that never answers.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use support::{free_port, http_error_listener, Prosody, Transport, LOOPBACK};
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

#[test]
fn a_listener_answering_garbage_is_not_xmpp() {
    let (addr, listener) = http_error_listener();
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
fn probe_all_keeps_input_order_and_probes_concurrently() {
    let prosody = Prosody::start("contoso.com");
    let closed = SocketAddr::from((LOOPBACK, free_port(Transport::Tcp)));
    // Listeners nobody accepts from: the handshake completes, no answer ever comes; each such
    // probe takes its whole timeout. They come first, so an order kept by finishing time
    // (the fast ones first) would show.
    let silent: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    let timeout = Duration::from_millis(1500);
    let mut targets: Vec<(SocketAddr, String)> = silent
        .iter()
        .map(|l| (l.local_addr().unwrap(), "contoso.com".to_string()))
        .collect();
    targets.push((prosody.addr(), "contoso.com".to_string()));
    targets.push((closed, "contoso.com".to_string()));

    let started = Instant::now();
    let results = probe_all(&targets, timeout);
    let took = started.elapsed();

    let got: Vec<(SocketAddr, ProbeStatus)> =
        results.iter().map(|r| (r.address, r.status)).collect();
    let mut expected: Vec<(SocketAddr, ProbeStatus)> = targets[..4]
        .iter()
        .map(|(addr, _)| (*addr, ProbeStatus::Timeout))
        .collect();
    expected.push((prosody.addr(), ProbeStatus::Xmpp));
    expected.push((closed, ProbeStatus::Closed));
    assert_eq!(got, expected);
    // One after another, the four silent listeners alone would take 4 x 1.5 s = 6 s; together
    // they take about 1.5 s. 4.5 s leaves a busy 2-core machine 3 s of slack either way.
    assert!(
        took < timeout * 3,
        "{took:?}: the probes did not run concurrently"
    );
    drop(silent);
}
