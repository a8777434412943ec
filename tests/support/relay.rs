//! On-path attackers for the hardening tests: a TCP relay and a UDP relay on 127.0.0.1 that
//! forward a client's DNS traffic to a real server and let the test forge, add or drop the
//! server's messages on the way back; and builders for the forged messages.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::process::LOOPBACK;

/// Bound on any one read or write of a relay: a stuck test ends instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Given the index (0-based) of a message the server sent and its bytes, the messages to send
/// the client instead (in order): `vec![message]` forwards it unchanged.
pub type TcpTamper = dyn Fn(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + Sync;

/// Given the client's query and the server's genuine reply, the datagrams to send the client
/// (in order): `vec![reply]` forwards it unchanged.
pub type UdpTamper = dyn Fn(&[u8], Vec<u8>) -> Vec<Vec<u8>> + Send + Sync;

/// A TCP relay to `upstream` that passes every DNS message the server sends through a tamper
/// function. Each accepted connection gets its own upstream connection. Stopped on drop.
pub struct TcpRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpRelay {
    pub fn start(
        upstream: SocketAddr,
        tamper: impl Fn(usize, Vec<u8>) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> TcpRelay {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind the TCP relay");
        let addr = listener.local_addr().expect("relay address");
        let stop = Arc::new(AtomicBool::new(false));
        let tamper: Arc<TcpTamper> = Arc::new(tamper);
        let stopping = stop.clone();
        let acceptor = thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let tamper = tamper.clone();
                thread::spawn(move || relay_tcp(client, upstream, &*tamper));
            }
        });
        TcpRelay {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn relay_tcp(client: TcpStream, upstream: SocketAddr, tamper: &TcpTamper) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    for stream in [&client, &server] {
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    }
    // Client to server: the request bytes as they are.
    let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let requests = thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    let mut index = 0;
    while let Ok(message) = read_frame(&mut from_server) {
        for out in tamper(index, message) {
            if write_frame(&mut to_client, &out).is_err() {
                break;
            }
        }
        index += 1;
    }
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = from_server.shutdown(Shutdown::Both);
    let _ = requests.join();
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}

fn write_frame(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

/// A UDP relay to `upstream`: each query is forwarded, and the server's reply passes through a
/// tamper function. Serves queries one at a time until dropped.
pub struct UdpRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl UdpRelay {
    pub fn start(
        upstream: SocketAddr,
        tamper: impl Fn(&[u8], Vec<u8>) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> UdpRelay {
        let socket = UdpSocket::bind((LOOPBACK, 0)).expect("bind the UDP relay");
        let addr = socket.local_addr().expect("relay address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let worker = thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !stopping.load(Ordering::SeqCst) {
                let Ok((n, client)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let query = buf[..n].to_vec();
                let Some(reply) = ask(upstream, &query) else {
                    continue;
                };
                for out in tamper(&query, reply) {
                    let _ = socket.send_to(&out, client);
                }
            }
        });
        UdpRelay {
            addr,
            stop,
            worker: Some(worker),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking receive so the thread sees the flag.
        if let Ok(waker) = UdpSocket::bind((LOOPBACK, 0)) {
            let _ = waker.send_to(b"stop", self.addr);
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The server's reply to one query, if it answers in time.
fn ask(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((LOOPBACK, 0)).ok()?;
    socket.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    socket.connect(upstream).ok()?;
    socket.send(query).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// The header of `message` with the answer, authority and additional sections dropped (the
/// question kept): a bare reply to it. `rcode` goes in the header, QR and AA are set.
pub fn bare_reply(message: &[u8], rcode: u8) -> Vec<u8> {
    let mut reply = message[..question_end(message)].to_vec();
    reply[2] |= 0x84; // QR, AA
    reply[3] = (reply[3] & 0xF0) | rcode;
    reply[6..12].fill(0);
    reply
}

/// Where the question section of `message` ends (uncompressed names, as in every question).
pub fn question_end(message: &[u8]) -> usize {
    let questions = u16::from_be_bytes([message[4], message[5]]);
    let mut pos = 12;
    for _ in 0..questions {
        while message[pos] != 0 {
            pos += 1 + message[pos] as usize;
        }
        pos += 1 + 4;
    }
    pos
}

/// `name` as uncompressed wire labels.
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Appends one resource record to the answer section of `message`, which must have empty
/// authority and additional sections.
pub fn push_answer(message: &mut Vec<u8>, name: &str, rtype: u16, ttl: u32, rdata: &[u8]) {
    assert_eq!(
        &message[8..12],
        &[0, 0, 0, 0],
        "authority/additional not empty"
    );
    message.extend_from_slice(&wire_name(name));
    message.extend_from_slice(&rtype.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes()); // IN
    message.extend_from_slice(&ttl.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(rdata);
    let answers = u16::from_be_bytes([message[6], message[7]]) + 1;
    message[6..8].copy_from_slice(&answers.to_be_bytes());
}

/// SRV rdata: priority, weight, port, target.
pub fn srv_rdata(priority: u16, weight: u16, port: u16, target: &str) -> Vec<u8> {
    let mut rdata = Vec::new();
    rdata.extend_from_slice(&priority.to_be_bytes());
    rdata.extend_from_slice(&weight.to_be_bytes());
    rdata.extend_from_slice(&port.to_be_bytes());
    rdata.extend_from_slice(&wire_name(target));
    rdata
}

/// Appends a TSIG record that carries TSIG error `error` and no MAC (how a server reports
/// BADSIG / BADKEY, unsigned), for key `key_name` and `algorithm` at `time`.
pub fn push_unsigned_tsig_error(
    message: &mut Vec<u8>,
    key_name: &str,
    algorithm: &str,
    time: u64,
    error: u16,
) {
    let original_id = [message[0], message[1]];
    let mut rdata = wire_name(algorithm);
    rdata.extend_from_slice(&time.to_be_bytes()[2..8]);
    rdata.extend_from_slice(&300u16.to_be_bytes()); // fudge
    rdata.extend_from_slice(&0u16.to_be_bytes()); // MAC size
    rdata.extend_from_slice(&original_id);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes()); // other len
    message.extend_from_slice(&wire_name(key_name));
    message.extend_from_slice(&250u16.to_be_bytes()); // TSIG
    message.extend_from_slice(&255u16.to_be_bytes()); // ANY
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(&rdata);
    let additional = u16::from_be_bytes([message[10], message[11]]) + 1;
    message[10..12].copy_from_slice(&additional.to_be_bytes());
}

/// Seconds since 1970.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
