//! Message channel abstraction and an in-memory duplex pair for tests.
//!
//! Protocols only call [`OtChannel::send_msg`] with messages whose length the receiver
//! can compute from public parameters, and [`OtChannel::recv_msg`] with that exact length.
//! An implementation over a framed transport should read the frame header, compare the
//! announced length with `len` *before* allocating, and return [`OtError::Length`] on mismatch.
//!
//! Within one protocol step both parties may send before they receive (e.g. the two
//! opposite-direction OT extensions of the AND-triple generation). An implementation
//! must therefore not block inside `send_msg` until the peer reads (buffer the outgoing
//! data or write from a separate thread), or large simultaneous messages can deadlock.
//!
//! # Counting
//! [`MemChannel`] counts payload bytes only (no framing), and two latency measures:
//! * `rounds`: the party increments its counter each time it *receives* a message after
//!   having sent at least one message since its previous receive (or since the start).
//!   That is, it counts how often the party waits for the peer after speaking
//!   (direction changes seen from this party). A protocol's `rounds` in
//!   [`super::sizes::Cost`] is the maximum of the two parties' counters.
//! * `flights`: Lamport-style depth. Every message carries (out of band, not counted as
//!   payload) the sender's depth + 1, where a party's depth is the largest depth of any
//!   message it has received; `flights` is the largest depth a party has sent or received,
//!   i.e. the number of sequential one-way message flights on the critical path.

use super::OtError;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

/// Largest message any protocol of this module sends (2 MiB: an IKNP u-matrix chunk is
/// 128 * 2^16 / 8 = 1 MiB, a packed chunk of 2^16 values of <= 64 bits is 512 KiB).
/// A transport should reject any announced frame length above `min(len, MAX_MSG_BYTES)`
/// before allocating.
pub const MAX_MSG_BYTES: usize = 1 << 21;

/// A reliable, ordered, message-oriented channel to the peer.
///
/// `recv_msg` must flush any buffered outgoing data before it blocks (protocols send and
/// then receive without calling `flush` in between); protocols call `flush` after their
/// last send.
pub trait OtChannel {
    /// Send one message (the implementation frames it).
    fn send_msg(&mut self, bytes: &[u8]) -> Result<(), OtError>;
    /// Receive one message of exactly `len` bytes, or an error naming `what` (the step)
    /// if the peer sent another length, closed, or timed out.
    fn recv_msg(&mut self, len: usize, what: &str) -> Result<Vec<u8>, OtError>;
    /// Flush buffered outgoing data.
    fn flush(&mut self) -> Result<(), OtError>;
}

/// Payload and latency counters of one endpoint of a [`MemChannel`] pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Payload bytes sent by this endpoint.
    pub bytes_sent: u64,
    /// Payload bytes received by this endpoint.
    pub bytes_recv: u64,
    /// Messages sent.
    pub msgs_sent: u64,
    /// Direction-change rounds seen by this endpoint (see module docs).
    pub rounds: u64,
    /// Critical-path flight depth seen by this endpoint (see module docs).
    pub flights: u64,
}

/// One endpoint of an in-memory duplex channel (std mpsc), for tests and benchmarks.
pub struct MemChannel {
    tx: Sender<(Vec<u8>, u64)>,
    rx: Receiver<(Vec<u8>, u64)>,
    timeout: Duration,
    sent_since_recv: bool,
    depth: u64,
    c: Counters,
}

/// Default receive timeout of [`mem_pair`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Create a connected pair of in-memory endpoints with the default 30 s receive timeout.
pub fn mem_pair() -> (MemChannel, MemChannel) {
    mem_pair_timeout(DEFAULT_TIMEOUT)
}

/// Create a connected pair with a given receive timeout.
pub fn mem_pair_timeout(timeout: Duration) -> (MemChannel, MemChannel) {
    let (t1, r1) = channel();
    let (t2, r2) = channel();
    let mk = |tx, rx| MemChannel {
        tx,
        rx,
        timeout,
        sent_since_recv: false,
        depth: 0,
        c: Counters::default(),
    };
    (mk(t1, r2), mk(t2, r1))
}

impl MemChannel {
    /// Current counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.c;
        c.flights = c.flights.max(self.depth);
        c
    }
    /// Reset all counters (e.g. after the base-OT setup).
    pub fn reset_counters(&mut self) {
        self.c = Counters::default();
        self.sent_since_recv = false;
        self.depth = 0;
    }
}

impl OtChannel for MemChannel {
    fn send_msg(&mut self, bytes: &[u8]) -> Result<(), OtError> {
        if bytes.len() > MAX_MSG_BYTES {
            return Err(OtError::Param(format!(
                "send: message of {} bytes exceeds {MAX_MSG_BYTES}",
                bytes.len()
            )));
        }
        let d = self.depth + 1;
        self.tx
            .send((bytes.to_vec(), d))
            .map_err(|_| OtError::Closed {
                step: "send".into(),
            })?;
        self.c.bytes_sent += bytes.len() as u64;
        self.c.msgs_sent += 1;
        self.sent_since_recv = true;
        // The sender's own depth is not raised by sending: a later message without an
        // intervening receive belongs to the same flight.
        self.c.flights = self.c.flights.max(d);
        Ok(())
    }

    fn recv_msg(&mut self, len: usize, what: &str) -> Result<Vec<u8>, OtError> {
        if len > MAX_MSG_BYTES {
            return Err(OtError::Param(format!(
                "{what}: expected length {len} exceeds {MAX_MSG_BYTES}"
            )));
        }
        let (msg, d) = match self.rx.recv_timeout(self.timeout) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                return Err(OtError::Timeout {
                    step: what.into(),
                    secs: self.timeout.as_secs(),
                });
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(OtError::Closed { step: what.into() });
            }
        };
        if self.sent_since_recv {
            self.c.rounds += 1;
            self.sent_since_recv = false;
        }
        self.depth = self.depth.max(d);
        self.c.bytes_recv += msg.len() as u64;
        if msg.len() != len {
            return Err(OtError::length(what, len, msg.len()));
        }
        Ok(msg)
    }

    fn flush(&mut self) -> Result<(), OtError> {
        Ok(())
    }
}

/// A channel wrapper that applies a tampering function to outgoing messages
/// (tests of corrupted / truncated messages).
pub struct TamperChannel<C: OtChannel, F: FnMut(u64, &mut Vec<u8>)> {
    /// The wrapped channel.
    pub inner: C,
    /// Called with (index of the outgoing message, message) before sending.
    pub f: F,
    idx: u64,
}

impl<C: OtChannel, F: FnMut(u64, &mut Vec<u8>)> TamperChannel<C, F> {
    /// Wrap `inner`.
    pub fn new(inner: C, f: F) -> Self {
        TamperChannel { inner, f, idx: 0 }
    }
}

impl<C: OtChannel, F: FnMut(u64, &mut Vec<u8>)> OtChannel for TamperChannel<C, F> {
    fn send_msg(&mut self, bytes: &[u8]) -> Result<(), OtError> {
        let mut v = bytes.to_vec();
        (self.f)(self.idx, &mut v);
        self.idx += 1;
        self.inner.send_msg(&v)
    }
    fn recv_msg(&mut self, len: usize, what: &str) -> Result<Vec<u8>, OtError> {
        self.inner.recv_msg(len, what)
    }
    fn flush(&mut self) -> Result<(), OtError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_and_flight_rule() {
        let (mut a, mut b) = mem_pair();
        // A -> B, B -> A, then a simultaneous exchange.
        a.send_msg(&[1, 2, 3]).unwrap();
        a.send_msg(&[4]).unwrap();
        assert_eq!(b.recv_msg(3, "t: x").unwrap(), vec![1, 2, 3]);
        assert_eq!(b.recv_msg(1, "t: x").unwrap(), vec![4]);
        b.send_msg(&[5; 10]).unwrap();
        a.recv_msg(10, "t: x").unwrap();
        a.send_msg(&[6]).unwrap();
        b.send_msg(&[7]).unwrap();
        a.recv_msg(1, "t: x").unwrap();
        b.recv_msg(1, "t: x").unwrap();
        let (ca, cb) = (a.counters(), b.counters());
        assert_eq!((ca.bytes_sent, ca.bytes_recv, ca.msgs_sent), (5, 11, 3));
        assert_eq!((cb.bytes_sent, cb.bytes_recv, cb.msgs_sent), (11, 5, 2));
        // A: receives after sending twice -> 2; B: first receive without a prior send -> 0, then 1.
        assert_eq!((ca.rounds, cb.rounds), (2, 1));
        // flights: A's first messages depth 1, B's reply 2, the exchange 3.
        assert_eq!((ca.flights, cb.flights), (3, 3));
        // wrong length is a named error
        a.send_msg(&[0; 3]).unwrap();
        let e = b.recv_msg(4, "COT: corrections").unwrap_err();
        assert_eq!(e.to_string(), "COT: expected 4 bytes of corrections, got 3");
    }
}
