//! IKNP OT extension (Ishai, Kilian, Nissim, Petrank, "Extending Oblivious Transfers
//! Efficiently", CRYPTO 2003), semi-honest, kappa = 128.
//!
//! Roles swap: the OT-extension sender S is the base-OT receiver with a random
//! s in {0,1}^128 and seeds k_i^{s_i}; the extension receiver R is the base-OT sender with
//! seeds (k_i^0, k_i^1). For n OTs with choice bits r, R computes columns
//! t_i = G(k_i^0), u_i = t_i xor G(k_i^1) xor r and sends the 128 u columns
//! (128 * ceil(n/8) bytes); S computes
//! q_i = G(k_i^{s_i}) xor s_i u_i. After transposition row j satisfies q_j = t_j xor r_j s.
//! Random OT: S gets (H(j, q_j), H(j, q_j xor s)), R gets H(j, t_j) (H = [`prg::crh`]
//! with a unique index j per OT of the instance).
//!
//! Batches are processed in chunks of [`CHUNK`] OTs (one u-matrix message per chunk) so
//! the transposition buffers stay bounded; the PRG streams continue across chunks and calls.

use super::channel::OtChannel;
use super::prg::{self, Block};
use super::{OtError, Role, base, check_batch, mask};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Security parameter (number of base OTs / columns).
pub const KAPPA: usize = 128;
/// OTs per chunk (a multiple of 64, so every full chunk is byte- and word-aligned).
pub const CHUNK: usize = 1 << 16;
const PRG_DOMAIN: u64 = 0x494b_4e50; // "IKNP"

/// Bytes of the u-matrix for n OTs: 128 * ceil(n / 8) (about 16 bytes per OT).
pub fn u_matrix_bytes(n: usize) -> usize {
    128 * n.div_ceil(8)
}

/// In-place transpose of a 64x64 bit matrix: afterwards bit i of `a[j]` is the former bit j of `a[i]`.
#[inline]
pub fn transpose64(a: &mut [u64; 64]) {
    let mut j: usize = 32;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k: usize = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Transpose 128 columns of `w` words each (column i at cols[i*w..]) into `nc` rows,
/// passed in order to `f(start + j, row_j)`: bit i of row j = bit j of column i.
fn transpose_cols(
    cols: &[u64],
    w: usize,
    nc: usize,
    start: usize,
    f: &mut impl FnMut(usize, u128),
) {
    let mut a = [0u64; 64];
    let mut lo = [0u64; 64];
    for rb in 0..w {
        for half in 0..2 {
            for (i, ai) in a.iter_mut().enumerate() {
                *ai = cols.get((half * 64 + i) * w + rb).copied().unwrap_or(0);
            }
            transpose64(&mut a);
            if half == 0 {
                lo = a;
            }
        }
        let take = (nc - rb * 64).min(64);
        for j in 0..take {
            f(
                start + rb * 64 + j,
                (lo[j] as u128) | ((a[j] as u128) << 64),
            );
        }
    }
}

/// Little-endian words from bytes, zero-padded.
fn load_words(bytes: &[u8], out: &mut [u64]) {
    for (o, c) in out.iter_mut().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        *o = u64::from_le_bytes(b);
    }
    let full = bytes.len().div_ceil(8);
    for o in out.iter_mut().skip(full) {
        *o = 0;
    }
}

/// Rows of one extension call; row j belongs to the OT with hash index `base + j`.
pub struct ExtRows {
    /// Hash index of the first OT.
    pub base: u64,
    /// q_j (sender) or t_j (receiver).
    pub rows: Vec<u128>,
}

/// IKNP sender state (base-OT receiver).
pub struct IknpSender {
    s: u128,
    g: Vec<ChaCha20Rng>,
    ctr: u64,
    dom: u64,
}

/// IKNP receiver state (base-OT sender).
pub struct IknpReceiver {
    g0: Vec<ChaCha20Rng>,
    g1: Vec<ChaCha20Rng>,
    ctr: u64,
    dom: u64,
}

impl IknpSender {
    /// From the base-OT choice bits `s` and the received keys k_i^{s_i}.
    pub fn new(s: u128, keys: &[Block], dom: u64) -> IknpSender {
        IknpSender {
            s,
            g: keys.iter().map(|&k| prg::prg(k, PRG_DOMAIN)).collect(),
            ctr: 0,
            dom,
        }
    }
    /// The global correlation s.
    pub fn delta(&self) -> u128 {
        self.s
    }
    /// Hash domain of this instance.
    pub fn domain(&self) -> u64 {
        self.dom
    }
    /// Receive the u-matrix for `n` OTs and return the rows q_j. Only receives.
    pub fn extend<C: OtChannel>(&mut self, ch: &mut C, n: usize) -> Result<ExtRows, OtError> {
        check_batch(n, "IKNP extension")?;
        let mut rows = Vec::with_capacity(n);
        let base = self.extend_with(ch, n, |_, _, q| rows.push(q))?;
        Ok(ExtRows { base, rows })
    }

    /// Receive the u-matrix for `n` OTs chunk by chunk, calling `f(j, hash_index, q_j)` for
    /// j = 0..n in order; returns the hash index of OT 0. Only receives. Memory is bounded by
    /// one chunk.
    pub fn extend_with<C: OtChannel>(
        &mut self,
        ch: &mut C,
        n: usize,
        mut f: impl FnMut(usize, u64, u128),
    ) -> Result<u64, OtError> {
        check_batch(n, "IKNP extension")?;
        let base = self.ctr;
        let mut g = |j: usize, q: u128| f(j, base + j as u64, q);
        let mut cols = vec![0u64; KAPPA * CHUNK.div_ceil(64).min(n.div_ceil(64))];
        let mut start = 0usize;
        while start < n {
            let nc = (n - start).min(CHUNK);
            let w = nc.div_ceil(64);
            let cb = nc.div_ceil(8);
            let msg = ch.recv_msg(KAPPA * cb, "IKNP extension: u-matrix")?;
            if msg.len() != KAPPA * cb {
                return Err(OtError::length(
                    "IKNP extension: u-matrix",
                    KAPPA * cb,
                    msg.len(),
                ));
            }
            let mut u = vec![0u64; w];
            for i in 0..KAPPA {
                let ui = msg.get(i * cb..(i + 1) * cb).unwrap_or(&[]);
                load_words(ui, &mut u);
                let sm = 0u64.wrapping_sub(((self.s >> i) & 1) as u64);
                let gi = &mut self.g[i];
                let col = &mut cols[i * w..(i + 1) * w];
                for (c, &uk) in col.iter_mut().zip(u.iter()) {
                    *c = gi.next_u64() ^ (uk & sm);
                }
            }
            transpose_cols(&cols[..KAPPA * w], w, nc, start, &mut g);
            start += nc;
        }
        self.ctr += n as u64;
        Ok(base)
    }
}

impl IknpReceiver {
    /// From the base-OT key pairs.
    pub fn new(pairs: &[(Block, Block)], dom: u64) -> IknpReceiver {
        IknpReceiver {
            g0: pairs.iter().map(|p| prg::prg(p.0, PRG_DOMAIN)).collect(),
            g1: pairs.iter().map(|p| prg::prg(p.1, PRG_DOMAIN)).collect(),
            ctr: 0,
            dom,
        }
    }
    /// Hash domain of this instance.
    pub fn domain(&self) -> u64 {
        self.dom
    }
    /// Send the u-matrix for OTs with the given choice bits and return the rows t_j.
    /// Only sends.
    pub fn extend<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
    ) -> Result<ExtRows, OtError> {
        let mut rows = Vec::with_capacity(choices.len());
        let base = self.extend_with(ch, choices, |_, _, t| rows.push(t))?;
        Ok(ExtRows { base, rows })
    }

    /// Send the u-matrix chunk by chunk, calling `f(j, hash_index, t_j)` for j = 0..n in
    /// order; returns the hash index of OT 0. Only sends. Memory is bounded by one chunk.
    pub fn extend_with<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
        mut f: impl FnMut(usize, u64, u128),
    ) -> Result<u64, OtError> {
        let n = choices.len();
        check_batch(n, "IKNP extension")?;
        let base = self.ctr;
        let mut g = |j: usize, t: u128| f(j, base + j as u64, t);
        let mut start = 0usize;
        let mut cols = vec![0u64; KAPPA * CHUNK.div_ceil(64).min(n.div_ceil(64))];
        for chunk in choices.chunks(CHUNK) {
            let nc = chunk.len();
            let w = nc.div_ceil(64);
            let cb = nc.div_ceil(8);
            let mut r = vec![0u64; w];
            for (j, &c) in chunk.iter().enumerate() {
                r[j / 64] |= (c as u64) << (j % 64);
            }
            let mut msg = Vec::with_capacity(KAPPA * cb);
            let mut ub = vec![0u8; w * 8];
            for i in 0..KAPPA {
                let col = &mut cols[i * w..(i + 1) * w];
                let (g0, g1) = (&mut self.g0[i], &mut self.g1[i]);
                for ((c, &rk), o) in col.iter_mut().zip(r.iter()).zip(ub.chunks_exact_mut(8)) {
                    let t = g0.next_u64();
                    *c = t;
                    o.copy_from_slice(&(t ^ g1.next_u64() ^ rk).to_le_bytes());
                }
                msg.extend_from_slice(&ub[..cb]);
            }
            ch.send_msg(&msg)?;
            transpose_cols(&cols[..KAPPA * w], w, nc, start, &mut g);
            start += nc;
        }
        ch.flush()?;
        self.ctr += n as u64;
        Ok(base)
    }
}

/// Random-OT sender keys (H(j, q_j), H(j, q_j xor s)).
pub fn rot_sender_keys(e: &ExtRows, s: u128, dom: u64) -> Vec<(Block, Block)> {
    e.rows
        .iter()
        .enumerate()
        .map(|(j, &q)| {
            let idx = e.base + j as u64;
            (prg::crh(dom, idx, q), prg::crh(dom, idx, q ^ s))
        })
        .collect()
}

/// Random-OT receiver keys H(j, t_j).
pub fn rot_receiver_keys(e: &ExtRows, dom: u64) -> Vec<Block> {
    e.rows
        .iter()
        .enumerate()
        .map(|(j, &t)| prg::crh(dom, e.base + j as u64, t))
        .collect()
}

/// COT sender, extension part (only receives): with per-OT correlations `deltas` (l bits),
/// x0_j = H(j, q_j) mod 2^l, x1_j = x0_j + delta_j mod 2^l; returns (x0, y) with the
/// l-bit corrections y_j = x1_j - H(j, q_j xor s) mod 2^l, to be sent with [`send_packed`].
pub fn cot_sender_extend<C: OtChannel>(
    snd: &mut IknpSender,
    ch: &mut C,
    deltas: &[u64],
    l: u32,
) -> Result<(Vec<u64>, Vec<u64>), OtError> {
    super::check_width(l, "COT")?;
    let m = mask(l);
    let (s, dom) = (snd.s, snd.dom);
    let mut x0 = Vec::with_capacity(deltas.len());
    let mut y = Vec::with_capacity(deltas.len());
    snd.extend_with(ch, deltas.len(), |j, idx, q| {
        let a = prg::crh(dom, idx, q) as u64 & m;
        let b = prg::crh(dom, idx, q ^ s) as u64;
        let d = deltas.get(j).copied().unwrap_or(0);
        x0.push(a);
        y.push(a.wrapping_add(d).wrapping_sub(b) & m);
    })?;
    Ok((x0, y))
}

/// COT receiver, extension part (only sends): returns the pads H(j, t_j) mod 2^l.
pub fn cot_receiver_extend<C: OtChannel>(
    rcv: &mut IknpReceiver,
    ch: &mut C,
    choices: &[bool],
    l: u32,
) -> Result<Vec<u64>, OtError> {
    super::check_width(l, "COT")?;
    let m = mask(l);
    let dom = rcv.dom;
    let mut h = Vec::with_capacity(choices.len());
    rcv.extend_with(ch, choices, |_, idx, t| {
        h.push(prg::crh(dom, idx, t) as u64 & m)
    })?;
    Ok(h)
}

/// COT receiver output: x_{r_j} = H(j, t_j) + r_j y_j mod 2^l.
pub fn cot_receiver_finish(h: &[u64], choices: &[bool], y: &[u64], l: u32) -> Vec<u64> {
    let m = mask(l);
    h.iter()
        .zip(choices.iter().zip(y.iter()))
        .map(|(&h, (&c, &yj))| (if c { h.wrapping_add(yj) } else { h }) & m)
        .collect()
}

/// Send `l`-bit values packed, one message per [`CHUNK`] values
/// (total ceil(n*l/8) bytes since full chunks are byte-aligned). Sends nothing if empty.
pub fn send_packed<C: OtChannel>(ch: &mut C, vals: &[u64], l: u32) -> Result<(), OtError> {
    for c in vals.chunks(CHUNK) {
        ch.send_msg(&prg::pack(c, l))?;
    }
    ch.flush()
}

/// Receive `n` packed `l`-bit values sent by [`send_packed`].
pub fn recv_packed<C: OtChannel>(
    ch: &mut C,
    n: usize,
    l: u32,
    what: &str,
) -> Result<Vec<u64>, OtError> {
    check_batch(n, what)?;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let nc = (n - start).min(CHUNK);
        let len = (nc as u64 * l as u64).div_ceil(8) as usize;
        let msg = ch.recv_msg(len, what)?;
        out.extend(prg::unpack(&msg, nc, l, what)?);
        start += nc;
    }
    Ok(out)
}

/// Bits that hold every value below the modulus p (p >= 2): ceil(log2 p).
pub fn mod_bits(p: u64) -> u32 {
    crate::units::ceil_log2(p.max(2))
}

/// The largest modulus the mod-p COT takes: sums of two values below it fit in 64 bits and
/// the hash's reduction bias stays below 2^-66.
pub const MAX_COT_MODULUS: u64 = 1 << 62;

fn check_modulus(p: u64, what: &str) -> Result<(), OtError> {
    if !(2..=MAX_COT_MODULUS).contains(&p) {
        return Err(OtError::Param(format!(
            "{what}: modulus {p} is not in 2..=2^62"
        )));
    }
    Ok(())
}

/// Per-party OT state: one IKNP instance in each direction plus a CSPRNG.
pub struct OtSession {
    /// This party's role.
    pub role: Role,
    /// This party as OT-extension sender.
    pub snd: IknpSender,
    /// This party as OT-extension receiver.
    pub rcv: IknpReceiver,
    /// Session CSPRNG (ChaCha20 seeded from the OS).
    pub rng: ChaCha20Rng,
}

/// Hash domain of the extension where `sender` is the OT sender.
fn dom_of(sender: Role) -> u64 {
    match sender {
        Role::A => 0x41,
        Role::B => 0x42,
    }
}

impl OtSession {
    /// One-time setup: 128 Chou–Orlandi base OTs in each direction, run in parallel.
    /// Step 1: both send A (32 bytes). Step 2: both send 128 points (4096 bytes).
    /// Cost: [`super::sizes::base_setup`].
    pub fn setup<C: OtChannel>(ch: &mut C, role: Role) -> Result<OtSession, OtError> {
        let mut rng = prg::os_rng()?;
        let (cs, m1) = base::CoSender::new(&mut rng);
        ch.send_msg(&m1)?;
        let peer_m1 = ch.recv_msg(base::POINT_BYTES, "base OT setup: sender point")?;
        let s = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
        let choices: Vec<bool> = (0..KAPPA).map(|i| (s >> i) & 1 == 1).collect();
        let (keys, m2) = base::co_receive(&mut rng, &peer_m1, &choices)?;
        ch.send_msg(&m2)?;
        let peer_m2 = ch.recv_msg(KAPPA * base::POINT_BYTES, "base OT setup: receiver points")?;
        let pairs = cs.finish(&peer_m2, KAPPA)?;
        ch.flush()?;
        // A fresh seed for the session RNG so that it is independent of the values above.
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(OtSession {
            role,
            snd: IknpSender::new(s, &keys, dom_of(role)),
            rcv: IknpReceiver::new(&pairs, dom_of(role.peer())),
            rng: ChaCha20Rng::from_seed(seed),
        })
    }

    /// Random bits from the session CSPRNG.
    pub fn random_bools(&mut self, n: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let w = self.rng.next_u64();
            for b in 0..64.min(n - out.len()) {
                out.push((w >> b) & 1 == 1);
            }
        }
        out
    }

    /// Random l-bit values from the session CSPRNG.
    pub fn random_u64s(&mut self, n: usize, l: u32) -> Vec<u64> {
        (0..n).map(|_| self.rng.next_u64() & mask(l)).collect()
    }

    /// ROT sender: n pairs of random 128-bit keys. Cost: [`super::sizes::rot`].
    pub fn rot_send<C: OtChannel>(
        &mut self,
        ch: &mut C,
        n: usize,
    ) -> Result<Vec<(Block, Block)>, OtError> {
        let (s, dom) = (self.snd.s, self.snd.dom);
        let mut out = Vec::with_capacity(n);
        self.snd.extend_with(ch, n, |_, idx, q| {
            out.push((prg::crh(dom, idx, q), prg::crh(dom, idx, q ^ s)))
        })?;
        Ok(out)
    }

    /// ROT receiver: the keys selected by `choices`.
    pub fn rot_recv<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let dom = self.rcv.dom;
        let mut out = Vec::with_capacity(choices.len());
        self.rcv
            .extend_with(ch, choices, |_, idx, t| out.push(prg::crh(dom, idx, t)))?;
        Ok(out)
    }

    /// COT sender with per-OT correlations `deltas` (l bits): returns x0 (x1 = x0 + delta mod 2^l).
    /// Cost: [`super::sizes::cot`].
    pub fn cot_send<C: OtChannel>(
        &mut self,
        ch: &mut C,
        deltas: &[u64],
        l: u32,
    ) -> Result<Vec<u64>, OtError> {
        let (x0, y) = cot_sender_extend(&mut self.snd, ch, deltas, l)?;
        send_packed(ch, &y, l)?;
        Ok(x0)
    }

    /// COT receiver: x0 + c * delta mod 2^l for each choice c.
    pub fn cot_recv<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
        l: u32,
    ) -> Result<Vec<u64>, OtError> {
        let h = cot_receiver_extend(&mut self.rcv, ch, choices, l)?;
        let y = recv_packed(ch, choices.len(), l, "COT: corrections")?;
        Ok(cot_receiver_finish(&h, choices, &y, l))
    }

    /// COT sender mod an arbitrary modulus p (2 <= p <= 2^62) with per-OT correlations
    /// `deltas` (each below p): x0_j = H(j, q_j) mod p, x1_j = x0_j + delta_j mod p; sends
    /// the corrections y_j = x1_j - H(j, q_j xor s) mod p in [`mod_bits`]`(p)` bits each.
    /// The 128-bit hash reduced mod p is within 2^-66 of uniform in statistical distance.
    /// Cost: [`super::sizes::cot`] with l = [`mod_bits`]`(p)`.
    pub fn cot_send_mod<C: OtChannel>(
        &mut self,
        ch: &mut C,
        deltas: &[u64],
        p: u64,
    ) -> Result<Vec<u64>, OtError> {
        check_modulus(p, "COT mod p")?;
        if deltas.iter().any(|&d| d >= p) {
            return Err(OtError::Param(format!(
                "COT mod p: a correlation is not below p = {p}"
            )));
        }
        let (s, dom) = (self.snd.s, self.snd.dom);
        let pp = p as u128;
        let mut x0 = Vec::with_capacity(deltas.len());
        let mut y = Vec::with_capacity(deltas.len());
        self.snd.extend_with(ch, deltas.len(), |j, idx, q| {
            let a = (prg::crh(dom, idx, q) % pp) as u64;
            let b = (prg::crh(dom, idx, q ^ s) % pp) as u64;
            let d = deltas.get(j).copied().unwrap_or(0);
            x0.push(a);
            y.push(((a as u128 + d as u128 + pp - b as u128) % pp) as u64);
        })?;
        send_packed(ch, &y, mod_bits(p))?;
        Ok(x0)
    }

    /// COT receiver mod p: x0 + c * delta mod p for each choice c. A correction that is
    /// not below p is refused (the peer is not following the protocol).
    pub fn cot_recv_mod<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
        p: u64,
    ) -> Result<Vec<u64>, OtError> {
        check_modulus(p, "COT mod p")?;
        let dom = self.rcv.dom;
        let pp = p as u128;
        let mut h = Vec::with_capacity(choices.len());
        self.rcv.extend_with(ch, choices, |_, idx, t| {
            h.push((prg::crh(dom, idx, t) % pp) as u64)
        })?;
        let y = recv_packed(ch, choices.len(), mod_bits(p), "COT mod p: corrections")?;
        if y.iter().any(|&v| v >= p) {
            return Err(OtError::Param(format!(
                "COT mod p: the peer sent a correction not below p = {p}"
            )));
        }
        Ok(h.iter()
            .zip(choices.iter().zip(&y))
            .map(|(&h, (&c, &yj))| {
                if c {
                    ((h as u128 + yj as u128) % pp) as u64
                } else {
                    h
                }
            })
            .collect())
    }

    /// Chosen-message 1-of-2 OT sender of l-bit messages (m0, m1): sends
    /// m0 xor H(j, q_j), m1 xor H(j, q_j xor s) truncated to l bits (2l bits per OT).
    /// Cost: [`super::sizes::ot`].
    pub fn ot_send<C: OtChannel>(
        &mut self,
        ch: &mut C,
        msgs: &[(u64, u64)],
        l: u32,
    ) -> Result<(), OtError> {
        super::check_width(l, "OT")?;
        let e = self.snd.extend(ch, msgs.len())?;
        let keys = rot_sender_keys(&e, self.snd.s, self.snd.dom);
        let mut ct = Vec::with_capacity(2 * msgs.len());
        for (&(m0, m1), &(k0, k1)) in msgs.iter().zip(keys.iter()) {
            ct.push((m0 ^ k0 as u64) & mask(l));
            ct.push((m1 ^ k1 as u64) & mask(l));
        }
        send_packed(ch, &ct, l)
    }

    /// Chosen-message 1-of-2 OT receiver: m_{c_j}.
    pub fn ot_recv<C: OtChannel>(
        &mut self,
        ch: &mut C,
        choices: &[bool],
        l: u32,
    ) -> Result<Vec<u64>, OtError> {
        super::check_width(l, "OT")?;
        let e = self.rcv.extend(ch, choices)?;
        let keys = rot_receiver_keys(&e, self.rcv.dom);
        let ct = recv_packed(ch, 2 * choices.len(), l, "OT: ciphertexts")?;
        Ok(choices
            .iter()
            .zip(keys.iter())
            .zip(ct.chunks_exact(2))
            .map(|((&c, &k), p)| (p[c as usize] ^ k as u64) & mask(l))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn transpose_matches_naive() {
        let mut rng = prg::os_rng().unwrap();
        let mut a = [0u64; 64];
        for x in a.iter_mut() {
            *x = rng.next_u64();
        }
        let orig = a;
        transpose64(&mut a);
        for i in 0..64 {
            for j in 0..64 {
                assert_eq!((a[j] >> i) & 1, (orig[i] >> j) & 1);
            }
        }
        let w = 3;
        let cols: Vec<u64> = (0..KAPPA * w).map(|_| rng.next_u64()).collect();
        let mut rows = Vec::new();
        transpose_cols(&cols, w, 150, 0, &mut |j, r| {
            assert_eq!(j, rows.len());
            rows.push(r)
        });
        assert_eq!(rows.len(), 150);
        for (j, r) in rows.iter().enumerate() {
            for i in 0..KAPPA {
                assert_eq!(
                    ((r >> i) & 1) as u64,
                    (cols[i * w + j / 64] >> (j % 64)) & 1
                );
            }
        }
    }
}
