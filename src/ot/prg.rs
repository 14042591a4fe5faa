//! Session randomness, seed-expanding PRG, correlation-robust hash, bit packing.

use super::{OtError, mask};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

/// A 128-bit block.
pub type Block = u128;

/// A fresh ChaCha20 CSPRNG seeded with 256 bits from the operating system (getrandom).
pub fn os_rng() -> Result<ChaCha20Rng, OtError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| OtError::Rng(e.to_string()))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// PRG expanding a 128-bit seed: ChaCha20 keyed with (seed || domain || 0^64).
/// Output is drawn with `RngCore` methods (`next_u64`, `fill_bytes`); both parties that
/// hold the same seed must draw the same sequence of calls to stay in sync.
pub fn prg(seed: Block, domain: u64) -> ChaCha20Rng {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&seed.to_le_bytes());
    k[16..24].copy_from_slice(&domain.to_le_bytes());
    ChaCha20Rng::from_seed(k)
}

/// Fill `out` with PRG output bits (bytes) from a 128-bit seed.
pub fn expand_bytes(seed: Block, domain: u64, out: &mut [u8]) {
    use rand_core::RngCore;
    prg(seed, domain).fill_bytes(out);
}

const CRH_TAG: u64 = 0x6865_712d_6f74_2d48; // "heq-ot-H"

/// Correlation-robust hash H(index, block) = first 128 bits of
/// SHA-256(tag || domain || index || 0u32 || block) (all little-endian, 44 bytes, one compression).
#[inline]
pub fn crh(domain: u64, index: u64, x: Block) -> Block {
    let d = crh_wide(domain, index, 0, x);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Full 256-bit output SHA-256(tag || domain || index || ctr || block) (44-byte input, one
/// compression, computed with the padding built in); `ctr` selects further 256-bit output
/// blocks of the same (index, block) input (counter mode).
#[inline]
pub fn crh_wide(domain: u64, index: u64, ctr: u32, x: Block) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..8].copy_from_slice(&CRH_TAG.to_le_bytes());
    buf[8..16].copy_from_slice(&domain.to_le_bytes());
    buf[16..24].copy_from_slice(&index.to_le_bytes());
    buf[24..28].copy_from_slice(&ctr.to_le_bytes());
    buf[28..44].copy_from_slice(&x.to_le_bytes());
    buf[44] = 0x80;
    buf[56..64].copy_from_slice(&(44u64 * 8).to_be_bytes());
    let mut st = SHA256_IV;
    sha2::compress256(
        &mut st,
        &[sha2::digest::generic_array::GenericArray::from(buf)],
    );
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(st.iter()) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Reference implementation of [`crh_wide`] through the `Digest` API (for tests).
pub fn crh_wide_reference(domain: u64, index: u64, ctr: u32, x: Block) -> [u8; 32] {
    let mut buf = [0u8; 44];
    buf[..8].copy_from_slice(&CRH_TAG.to_le_bytes());
    buf[8..16].copy_from_slice(&domain.to_le_bytes());
    buf[16..24].copy_from_slice(&index.to_le_bytes());
    buf[24..28].copy_from_slice(&ctr.to_le_bytes());
    buf[28..44].copy_from_slice(&x.to_le_bytes());
    Sha256::digest(buf).into()
}

/// Fill `out` with the counter-mode extension of [`crh_wide`].
pub fn crh_stream(domain: u64, index: u64, x: Block, out: &mut [u8]) {
    for (c, chunk) in out.chunks_mut(32).enumerate() {
        let d = crh_wide(domain, index, c as u32, x);
        chunk.copy_from_slice(&d[..chunk.len()]);
    }
}

/// Read `r <= 64` bits starting at bit offset `off` (LSB-first) of `buf`; bits past the end read 0.
#[inline]
pub fn get_bits(buf: &[u8], off: usize, r: u32) -> u64 {
    let mut v: u128 = 0;
    let first = off / 8;
    let sh = off % 8;
    let nbytes = (sh + r as usize).div_ceil(8);
    for k in 0..nbytes {
        let b = buf.get(first + k).copied().unwrap_or(0);
        v |= (b as u128) << (8 * k);
    }
    ((v >> sh) as u64) & mask(r)
}

/// Pack `l`-bit values (LSB-first, value after value) into ceil(len * l / 8) bytes.
pub fn pack(values: &[u64], l: u32) -> Vec<u8> {
    let total = (values.len() as u64 * l as u64).div_ceil(8) as usize;
    let mut out = Vec::with_capacity(total);
    let m = mask(l);
    let mut acc: u128 = 0;
    let mut nb: u32 = 0;
    for &v in values {
        acc |= ((v & m) as u128) << nb;
        nb += l;
        while nb >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nb -= 8;
        }
    }
    if nb > 0 {
        out.push(acc as u8);
    }
    out
}

/// Inverse of [`pack`]: `n` values of `l` bits. `bytes` must have length ceil(n*l/8).
pub fn unpack(bytes: &[u8], n: usize, l: u32, what: &str) -> Result<Vec<u64>, OtError> {
    let need = (n as u64 * l as u64).div_ceil(8) as usize;
    if bytes.len() != need {
        return Err(OtError::length(what, need, bytes.len()));
    }
    let mut out = Vec::with_capacity(n);
    let m = mask(l);
    let mut acc: u128 = 0;
    let mut nb: u32 = 0;
    for &b in bytes {
        acc |= (b as u128) << nb;
        nb += 8;
        while nb >= l && out.len() < n {
            out.push((acc as u64) & m);
            acc >>= l;
            nb -= l;
        }
    }
    Ok(out)
}

/// Pack booleans one bit each.
pub fn pack_bools(v: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; v.len().div_ceil(8)];
    for (j, &b) in v.iter().enumerate() {
        if let Some(o) = out.get_mut(j / 8) {
            *o |= (b as u8) << (j % 8);
        }
    }
    out
}

/// Unpack `n` booleans; `bytes` must have length ceil(n/8).
pub fn unpack_bools(bytes: &[u8], n: usize, what: &str) -> Result<Vec<bool>, OtError> {
    let need = n.div_ceil(8);
    if bytes.len() != need {
        return Err(OtError::length(what, need, bytes.len()));
    }
    Ok((0..n)
        .map(|j| (bytes.get(j / 8).copied().unwrap_or(0) >> (j % 8)) & 1 == 1)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore;

    #[test]
    fn pack_roundtrip() {
        let mut r = os_rng().unwrap();
        for l in [1u32, 2, 5, 8, 13, 31, 37, 64] {
            for n in [0usize, 1, 7, 1000] {
                let v: Vec<u64> = (0..n).map(|_| r.next_u64() & mask(l)).collect();
                let p = pack(&v, l);
                assert_eq!(p.len(), (n * l as usize).div_ceil(8));
                assert_eq!(unpack(&p, n, l, "t: x").unwrap(), v);
                for (i, &x) in v.iter().enumerate() {
                    assert_eq!(get_bits(&p, i * l as usize, l), x);
                }
            }
        }
        assert!(unpack(&[0u8; 3], 4, 8, "t: x").is_err());
    }

    #[test]
    fn prg_deterministic_and_hash_separated() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        expand_bytes(7, 1, &mut a);
        expand_bytes(7, 1, &mut b);
        assert_eq!(a, b);
        expand_bytes(7, 2, &mut b);
        assert_ne!(a, b);
        assert_ne!(crh(0, 1, 5), crh(0, 2, 5));
        assert_ne!(crh(0, 1, 5), crh(1, 1, 5));
        assert_ne!(crh(0, 1, 5), crh(0, 1, 6));
        for i in 0..50u64 {
            let x = (i as u128) * 0x1234_5678_9abc_def0_1122_3344_5566_7788;
            assert_eq!(
                crh_wide(i, i * 3, i as u32, x),
                crh_wide_reference(i, i * 3, i as u32, x)
            );
        }
        let mut r1 = os_rng().unwrap();
        let mut r2 = os_rng().unwrap();
        assert_ne!(r1.next_u64(), r2.next_u64());
    }
}
