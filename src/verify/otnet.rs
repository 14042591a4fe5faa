//! The OT protocols' channel ([`crate::ot::OtChannel`]) over the verify transport: each OT
//! message is one [`Kind::Ot`] frame. Sends go through a writer thread, so that a party never
//! blocks in a send while its peer sends too (the OT steps have both parties send before
//! they receive); receives check the frame's announced length against the length the
//! protocol step expects before anything is allocated, and time out.
//!
//! Counting follows [`crate::ot::channel`]: payload bytes each way (the 12-byte frame
//! headers are not counted), and a round each time a party receives after having sent
//! since its previous receive.

use super::transport::{Channel, FrameError, Kind};
use crate::ot::{OtChannel, OtError};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Payload bytes and rounds of one party's end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtCounters {
    pub payload_sent: u64,
    pub payload_received: u64,
    pub rounds: u64,
}

/// One party's end of the OT channel over a TCP stream.
pub struct TcpOt {
    reader: Channel<TcpStream>,
    out: Option<Sender<Vec<u8>>>,
    writer: Option<JoinHandle<Result<(), FrameError>>>,
    sent_since_recv: bool,
    pub counters: OtCounters,
    timeout: Duration,
}

fn transport(step: &str, e: impl std::fmt::Display) -> OtError {
    OtError::Transport {
        step: step.to_string(),
        msg: e.to_string(),
    }
}

impl TcpOt {
    /// Wraps a connected stream; a receive that waits longer than `timeout` fails.
    pub fn new(stream: TcpStream, timeout: Duration) -> Result<TcpOt, OtError> {
        let write_half = stream.try_clone().map_err(|e| transport("OT channel", e))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| transport("OT channel", e))?;
        // Unbounded: within one protocol step both parties send everything before they
        // receive, so a bounded queue can deadlock two parties that both block in a send.
        // The queue holds at most one step's messages, which the protocol's public
        // parameters (elements capped by the run's plan) bound.
        let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
        let writer = std::thread::spawn(move || -> Result<(), FrameError> {
            let mut w = Channel::new(write_half);
            for msg in rx {
                w.send(Kind::Ot, &msg)?;
            }
            w.flush()
        });
        Ok(TcpOt {
            reader: Channel::new(stream),
            out: Some(tx),
            writer: Some(writer),
            sent_since_recv: false,
            counters: OtCounters::default(),
            timeout,
        })
    }

    /// Waits for every queued frame to be written; returns the stream for further use.
    pub fn finish(mut self) -> Result<OtCounters, OtError> {
        self.out.take();
        if let Some(w) = self.writer.take() {
            w.join()
                .map_err(|_| transport("OT channel", "the writer thread panicked"))?
                .map_err(|e| transport("OT channel", e))?;
        }
        Ok(self.counters)
    }
}

impl Drop for TcpOt {
    fn drop(&mut self) {
        self.out.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl OtChannel for TcpOt {
    fn send_msg(&mut self, bytes: &[u8]) -> Result<(), OtError> {
        if bytes.len() > crate::ot::channel::MAX_MSG_BYTES {
            return Err(OtError::Param(format!(
                "send: message of {} bytes exceeds {}",
                bytes.len(),
                crate::ot::channel::MAX_MSG_BYTES
            )));
        }
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| transport("send", "the channel is finished"))?;
        out.send(bytes.to_vec())
            .map_err(|_| transport("send", "the connection's writer stopped (peer gone?)"))?;
        self.counters.payload_sent += bytes.len() as u64;
        self.sent_since_recv = true;
        Ok(())
    }

    fn recv_msg(&mut self, len: usize, what: &str) -> Result<Vec<u8>, OtError> {
        let cap = len.min(crate::ot::channel::MAX_MSG_BYTES);
        self.reader.max_frame = u32::try_from(cap).unwrap_or(u32::MAX);
        let step = what.split_once(": ").map_or(what, |(s, _)| s);
        let payload = match self.reader.recv(Kind::Ot) {
            Ok(p) => p,
            Err(FrameError::Oversized { len: got, .. }) => {
                return Err(OtError::length(what, len, got as usize));
            }
            Err(FrameError::Closed(_)) | Err(FrameError::Truncated(_)) => {
                return Err(OtError::Closed {
                    step: step.to_string(),
                });
            }
            Err(FrameError::TimedOut(_)) => {
                return Err(OtError::Timeout {
                    step: step.to_string(),
                    secs: self.timeout.as_secs(),
                });
            }
            Err(e) => return Err(transport(step, e)),
        };
        if payload.len() != len {
            return Err(OtError::length(what, len, payload.len()));
        }
        self.counters.payload_received += len as u64;
        if self.sent_since_recv {
            self.counters.rounds += 1;
            self.sent_since_recv = false;
        }
        Ok(payload)
    }

    fn flush(&mut self) -> Result<(), OtError> {
        Ok(())
    }
}
