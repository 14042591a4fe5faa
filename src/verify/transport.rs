//! Framed, versioned messages between the two parties over any byte stream.
//!
//! A frame is a 12-byte header followed by its payload:
//! `b"HQV1"` (magic), protocol version (u16 LE), message kind (u8), a zero byte, payload
//! length (u32 LE). A frame larger than the receiver's cap, a wrong magic or version, an
//! unknown kind or a stream that ends inside a frame is an error that names what was
//! expected; nothing is allocated before the length has been checked against the cap.

use std::io::{Read, Write};

pub const MAGIC: [u8; 4] = *b"HQV1";
pub const VERSION: u16 = 1;
pub const HEADER_BYTES: u64 = 12;
/// Default cap on one frame's payload (a single ciphertext is far smaller).
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

/// Message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Client -> server: the run's parameters (network, protocol, layers), JSON.
    Hello = 1,
    /// Server -> client: accepted, or the reason for refusing (JSON).
    HelloAck = 2,
    /// Client -> server: start of a layer, with its parameter set (JSON).
    LayerStart = 3,
    /// Client -> server: one query ciphertext (bit-packed body and seed).
    Query = 4,
    /// Server -> client: one response ciphertext (bit-packed, truncated).
    Response = 5,
    /// Server -> client: the seed of the server's layer data and its timings, so the
    /// client can check the result (verification only, not part of the protocol).
    Reveal = 6,
    /// Either way: the sender stops, with a reason.
    Abort = 7,
    /// Either way: one message of an oblivious-transfer protocol (non-linear layers).
    Ot = 8,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::HelloAck,
            3 => Kind::LayerStart,
            4 => Kind::Query,
            5 => Kind::Response,
            6 => Kind::Reveal,
            7 => Kind::Abort,
            8 => Kind::Ot,
            _ => return None,
        })
    }
}

/// A read or write that hit the socket's time-out (WouldBlock on Unix, TimedOut on Windows).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Characters of the peer's text shown at most.
pub const PEER_TEXT_CHARS: usize = 300;

/// Text from the peer made safe to print: control characters (terminal escapes, newlines)
/// become spaces, and at most [`PEER_TEXT_CHARS`] characters are kept, with the cut said.
pub fn peer_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(PEER_TEXT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let total = text.chars().count();
    if total > PEER_TEXT_CHARS {
        out.push_str(&format!(" ... ({total} characters in all)"));
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the connection while {0} was expected")]
    Closed(String),
    #[error("truncated frame: the stream ended inside a {0} frame")]
    Truncated(String),
    #[error("not a hequant verify peer (bad magic bytes {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("the peer speaks protocol version {got}, this build speaks version {VERSION}")]
    Version { got: u16 },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    Oversized { len: u32, cap: u32 },
    #[error("expected a {expected:?} message, got {got:?}")]
    Unexpected { expected: Kind, got: Kind },
    #[error("the peer aborted: {0}")]
    Aborted(String),
    #[error(
        "timed out: the peer sent nothing within the time-out (--timeout) while {0} was expected"
    )]
    TimedOut(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A stream with byte counters each way.
pub struct Channel<S> {
    stream: S,
    pub sent: u64,
    pub received: u64,
    pub max_frame: u32,
}

impl<S: Read + Write> Channel<S> {
    pub fn new(stream: S) -> Channel<S> {
        Channel {
            stream,
            sent: 0,
            received: 0,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    pub fn send(&mut self, kind: Kind, payload: &[u8]) -> Result<(), FrameError> {
        let len = u32::try_from(payload.len()).map_err(|_| FrameError::Oversized {
            len: u32::MAX,
            cap: self.max_frame,
        })?;
        let mut h = [0u8; HEADER_BYTES as usize];
        h[..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&VERSION.to_le_bytes());
        h[6] = kind as u8;
        h[8..12].copy_from_slice(&len.to_le_bytes());
        let mut frame = Vec::with_capacity(h.len() + payload.len());
        frame.extend_from_slice(&h);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)?;
        self.sent += HEADER_BYTES + payload.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), FrameError> {
        self.stream.flush()?;
        Ok(())
    }

    /// Reads one frame of any kind.
    pub fn recv_any(&mut self, what: &str) -> Result<(Kind, Vec<u8>), FrameError> {
        let mut h = [0u8; HEADER_BYTES as usize];
        let mut got = 0;
        while got < h.len() {
            match self.stream.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Err(FrameError::Closed(what.to_string())),
                Ok(0) => return Err(FrameError::Truncated(what.to_string())),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(FrameError::TimedOut(what.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        let magic = [h[0], h[1], h[2], h[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(FrameError::Version { got: version });
        }
        let kind = Kind::from_u8(h[6]).ok_or(FrameError::UnknownKind(h[6]))?;
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if len > self.max_frame {
            return Err(FrameError::Oversized {
                len,
                cap: self.max_frame,
            });
        }
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                FrameError::Truncated(format!("{kind:?}"))
            } else if timed_out(&e) {
                FrameError::TimedOut(format!("the rest of a {kind:?} frame"))
            } else {
                FrameError::Io(e)
            }
        })?;
        self.received += HEADER_BYTES + len as u64;
        if kind == Kind::Abort {
            return Err(FrameError::Aborted(peer_text(&payload)));
        }
        Ok((kind, payload))
    }

    /// Reads one frame that must be of `expected` kind.
    pub fn recv(&mut self, expected: Kind) -> Result<Vec<u8>, FrameError> {
        let (kind, p) = self.recv_any(&format!("{expected:?}"))?;
        if kind != expected {
            return Err(FrameError::Unexpected {
                expected,
                got: kind,
            });
        }
        Ok(p)
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A duplex stream for tests: reads from `input`, writes to `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut c = Channel::new(Duplex {
            input: Cursor::new(vec![]),
            output: vec![],
        });
        c.send(kind, payload).unwrap();
        c.into_inner().output
    }

    fn reader(bytes: Vec<u8>) -> Channel<Duplex> {
        Channel::new(Duplex {
            input: Cursor::new(bytes),
            output: vec![],
        })
    }

    #[test]
    fn round_trip_counts_bytes() {
        let f = frame(Kind::Query, b"abc");
        assert_eq!(f.len(), 15);
        let mut r = reader(f);
        assert_eq!(r.recv(Kind::Query).unwrap(), b"abc");
        assert_eq!(r.received, 15);
    }

    #[test]
    fn truncated_frame_is_reported() {
        let mut f = frame(Kind::Query, b"abcdef");
        f.truncate(14);
        let e = reader(f).recv(Kind::Query).unwrap_err();
        assert!(matches!(e, FrameError::Truncated(_)), "{e}");
        let e = reader(vec![b'H', b'Q']).recv(Kind::Query).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn closed_stream_is_reported() {
        let e = reader(vec![]).recv(Kind::Response).unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    }

    #[test]
    fn oversized_frame_is_refused_before_allocation() {
        let mut f = frame(Kind::Query, b"");
        f[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = reader(f).recv(Kind::Query).unwrap_err();
        assert!(
            matches!(e, FrameError::Oversized { len: u32::MAX, .. }),
            "{e}"
        );
    }

    #[test]
    fn wrong_version_is_reported() {
        let mut f = frame(Kind::Hello, b"{}");
        f[4..6].copy_from_slice(&7u16.to_le_bytes());
        let e = reader(f).recv(Kind::Hello).unwrap_err();
        assert!(e.to_string().contains("version 7"), "{e}");
    }

    #[test]
    fn garbage_is_not_a_peer() {
        let e = reader(b"GET / HTTP/1.1\r\n\r\n".to_vec())
            .recv(Kind::Hello)
            .unwrap_err();
        assert!(matches!(e, FrameError::BadMagic(_)), "{e}");
        let mut f = frame(Kind::Hello, b"");
        f[6] = 99;
        let e = reader(f).recv(Kind::Hello).unwrap_err();
        assert!(matches!(e, FrameError::UnknownKind(99)), "{e}");
    }

    #[test]
    fn unexpected_kind_and_abort() {
        let e = reader(frame(Kind::Response, b""))
            .recv(Kind::Query)
            .unwrap_err();
        assert!(matches!(e, FrameError::Unexpected { .. }), "{e}");
        let e = reader(frame(Kind::Abort, b"no"))
            .recv(Kind::Query)
            .unwrap_err();
        assert!(e.to_string().contains("aborted: no"), "{e}");
    }
}
