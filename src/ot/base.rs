//! Base OT: Chou–Orlandi "The Simplest Protocol for Oblivious Transfer"
//! (LATINCRYPT 2015) over the Ristretto255 group, semi-honest.
//!
//! Sender: a <- Z_q, sends A = aG (32 bytes).
//! Receiver, for OT i with choice c_i: b_i <- Z_q, sends B_i = b_i G + c_i A (32 bytes each),
//! outputs k_i = H(i, A, B_i, b_i A).
//! Sender outputs k_i^0 = H(i, A, B_i, a B_i), k_i^1 = H(i, A, B_i, a (B_i - A)).
//! H is SHA-256 with a domain tag, truncated to 128 bits.
//! Communication for k OTs: 32 bytes sender -> receiver, 32 k bytes receiver -> sender.

use super::OtError;
use super::prg::Block;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable};

/// Size of a compressed Ristretto point.
pub const POINT_BYTES: usize = 32;

fn kdf(i: usize, a: &[u8; 32], b: &[u8; 32], p: &RistrettoPoint) -> Block {
    let mut h = Sha256::new();
    h.update(b"hequant-ot/CO15-base-OT");
    h.update((i as u64).to_le_bytes());
    h.update(a);
    h.update(b);
    h.update(p.compress().as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    u128::from_le_bytes(k)
}

fn decode(bytes: &[u8], step: &str, index: usize) -> Result<RistrettoPoint, OtError> {
    let c = CompressedRistretto::from_slice(bytes)
        .map_err(|_| OtError::length(step, POINT_BYTES, bytes.len()))?;
    match c.decompress() {
        Some(p) if p != RistrettoPoint::identity() => Ok(p),
        _ => Err(OtError::InvalidPoint {
            step: step.to_string(),
            index,
        }),
    }
}

/// Base-OT sender state after sending its first message.
pub struct CoSender {
    a: Scalar,
    a_point: RistrettoPoint,
    a_bytes: [u8; 32],
}

impl CoSender {
    /// Pick a and return the state together with the first message A = aG.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> (CoSender, [u8; 32]) {
        let a = Scalar::random(rng);
        let a_point = RistrettoPoint::mul_base(&a);
        let a_bytes = a_point.compress().to_bytes();
        (
            CoSender {
                a,
                a_point,
                a_bytes,
            },
            a_bytes,
        )
    }

    /// Process the receiver's message (k points) and output the k key pairs.
    pub fn finish(&self, msg: &[u8], k: usize) -> Result<Vec<(Block, Block)>, OtError> {
        let step = "base OT (sender): receiver points";
        if msg.len() != k * POINT_BYTES {
            return Err(OtError::length(step, k * POINT_BYTES, msg.len()));
        }
        let mut out = Vec::with_capacity(k);
        for (i, chunk) in msg.chunks_exact(POINT_BYTES).enumerate() {
            let b = decode(chunk, step, i)?;
            let mut bb = [0u8; 32];
            bb.copy_from_slice(chunk);
            let p0 = self.a * b;
            let p1 = self.a * (b - self.a_point);
            out.push((
                kdf(i, &self.a_bytes, &bb, &p0),
                kdf(i, &self.a_bytes, &bb, &p1),
            ));
        }
        Ok(out)
    }
}

/// Base-OT receiver: given the sender's first message and the choice bits, return the
/// chosen keys and the message (|choices| points) to send back.
pub fn co_receive<R: RngCore + CryptoRng>(
    rng: &mut R,
    msg1: &[u8],
    choices: &[bool],
) -> Result<(Vec<Block>, Vec<u8>), OtError> {
    let step = "base OT (receiver): sender point";
    if msg1.len() != POINT_BYTES {
        return Err(OtError::length(step, POINT_BYTES, msg1.len()));
    }
    let a = decode(msg1, step, 0)?;
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(msg1);
    let mut keys = Vec::with_capacity(choices.len());
    let mut msg = Vec::with_capacity(choices.len() * POINT_BYTES);
    for (i, &c) in choices.iter().enumerate() {
        let b = Scalar::random(rng);
        let bg = RistrettoPoint::mul_base(&b);
        let bga = bg + a;
        let big_b = RistrettoPoint::conditional_select(&bg, &bga, Choice::from(c as u8));
        let bb = big_b.compress().to_bytes();
        keys.push(kdf(i, &a_bytes, &bb, &(b * a)));
        msg.extend_from_slice(&bb);
    }
    Ok((keys, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::prg::os_rng;

    #[test]
    fn base_ot_correct_and_rejects_bad_points() {
        let mut rng = os_rng().unwrap();
        let choices: Vec<bool> = (0..128).map(|i| (i * 7) % 3 == 0).collect();
        let (s, m1) = CoSender::new(&mut rng);
        let (keys, m2) = co_receive(&mut rng, &m1, &choices).unwrap();
        let pairs = s.finish(&m2, 128).unwrap();
        for i in 0..128 {
            let (k0, k1) = pairs[i];
            assert_ne!(k0, k1);
            assert_eq!(keys[i], if choices[i] { k1 } else { k0 });
        }
        // invalid encoding
        let mut bad = m2.clone();
        bad[5 * 32] ^= 0x01;
        bad[5 * 32 + 31] = 0xff;
        match s.finish(&bad, 128) {
            Err(OtError::InvalidPoint { index, .. }) => assert_eq!(index, 5),
            other => panic!("expected InvalidPoint, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            co_receive(&mut rng, &[0xffu8; 32], &choices),
            Err(OtError::InvalidPoint { .. })
        ));
        assert!(matches!(
            co_receive(&mut rng, &[0u8; 32], &choices),
            Err(OtError::InvalidPoint { .. })
        ));
        assert!(matches!(
            s.finish(&m2[..100], 128),
            Err(OtError::Length { .. })
        ));
    }
}
