//! The datagram buffers and message headers of Linux's `recvmmsg` and `sendmmsg` (through
//! `nix`), so that the batch sends a window refill, and takes the replies waiting on a socket,
//! in one system call each.

use std::net::{SocketAddr, UdpSocket};

use super::Datagram;

/// The most datagrams taken in one `recvmmsg`.
const BURST: usize = 32;
/// Room for any UDP datagram: a server may send more than the EDNS size we announce, and a
/// datagram cut short would answer nothing.
const DATAGRAM: usize = 65_535;

/// One datagram taken by [`Burst::receive`]: its length in its buffer and where it came from
/// (`None`: cut short, or not from an IP address; it answers nothing).
type Arrival = (usize, Option<SocketAddr>);

/// The buffers and message headers of `recvmmsg` and `sendmmsg` (Linux, through `nix`),
/// allocated once per batch: allocated per call they cost more than the system calls did
/// (glibc consolidates its free lists on every request of their size).
pub(super) struct Burst {
    /// [`BURST`] datagram buffers of [`DATAGRAM`] bytes, end to end.
    buffers: Vec<u8>,
    arrivals: Vec<Arrival>,
    receive_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    send_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    send_capacity: usize,
}

impl Burst {
    pub(super) fn new(window: usize) -> Self {
        use nix::sys::socket::MultiHeaders;
        Burst {
            buffers: vec![0u8; BURST * DATAGRAM],
            arrivals: Vec::with_capacity(BURST),
            receive_headers: MultiHeaders::preallocate(BURST, None),
            send_headers: MultiHeaders::preallocate(window, None),
            send_capacity: window,
        }
    }

    /// Where the `index`th datagram of the last [`Burst::receive`] came from; `None` when it
    /// was cut short or not from an IP address (it answers nothing).
    pub(super) fn sender(&self, index: usize) -> Option<SocketAddr> {
        self.arrivals[index].1
    }

    /// The `index`th datagram of the last [`Burst::receive`].
    pub(super) fn datagram(&self, index: usize) -> &[u8] {
        let (length, _) = self.arrivals[index];
        &self.buffers[index * DATAGRAM..index * DATAGRAM + length]
    }

    /// Takes the datagrams waiting on `socket`, up to [`BURST`], without blocking, in one
    /// system call: under load, replies arrive faster than one `recvfrom` each can take them.
    /// The number taken; 0 when none was waiting (or on an error, which the next call sees
    /// again).
    pub(super) fn receive(&mut self, socket: &UdpSocket) -> usize {
        use nix::sys::socket::{recvmmsg, MsgFlags};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.arrivals.clear();
        let mut chunks = self.buffers.chunks_mut(DATAGRAM);
        let mut slices: [[IoSliceMut<'_>; 1]; BURST] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().expect("BURST buffers"))]);
        let Ok(received) = recvmmsg(
            socket.as_raw_fd(),
            &mut self.receive_headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) else {
            return 0;
        };
        for message in received {
            let cut = message.flags.contains(MsgFlags::MSG_TRUNC);
            let from = message.address.and_then(|a| match a.as_sockaddr_in() {
                Some(v4) => Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4))),
                None => a
                    .as_sockaddr_in6()
                    .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6))),
            });
            self.arrivals.push((message.bytes, from.filter(|_| !cut)));
        }
        self.arrivals.len()
    }

    /// One `sendmmsg` of `datagrams` (each a range of `bytes`): how many the kernel took (0 on
    /// an error, which sending the first of the rest alone then reports).
    pub(super) fn send(
        &mut self,
        socket: &UdpSocket,
        bytes: &[u8],
        datagrams: &[&Datagram],
    ) -> usize {
        use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        if datagrams.len() > self.send_capacity {
            self.send_headers = MultiHeaders::preallocate(datagrams.len(), None);
            self.send_capacity = datagrams.len();
        }
        let slices: Vec<[IoSlice<'_>; 1]> = datagrams
            .iter()
            .map(|d| [IoSlice::new(&bytes[d.bytes.clone()])])
            .collect();
        let addresses: Vec<Option<SockaddrStorage>> = datagrams
            .iter()
            .map(|d| Some(SockaddrStorage::from(d.server)))
            .collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        match sendmmsg(
            socket.as_raw_fd(),
            &mut self.send_headers,
            &slices,
            &addresses,
            no_control,
            MsgFlags::empty(),
        ) {
            Ok(sent) => sent.count(),
            Err(_) => 0,
        }
    }
}
