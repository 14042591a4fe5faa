//! The tfhe side: secret keys, seeded encryption of queries, decompression on the server,
//! and decryption of truncated responses, for a power-of-two ciphertext modulus 2^log_q in
//! a u64 (log_q <= 64) or u128 container. Values mod 2^log_q sit in the most significant
//! bits of the container, as tfhe stores non-native power-of-two moduli.

use tfhe::core_crypto::commons::math::random::{CompressionSeed, RandomGenerable, Seed, Uniform};
use tfhe::core_crypto::prelude::*;

use super::ntt::{CrtNtt, NttPoly, bound_bits};
pub use super::plain::PlainModulus;

/// A container word (u64 or u128) with conversions to u128.
pub trait Word:
    UnsignedTorus + Encryptable<Uniform, Gaussian<f64>> + RandomGenerable<Uniform> + Send + Sync
{
    fn to_u128(self) -> u128;
    fn from_u128(v: u128) -> Self;
}

impl Word for u64 {
    fn to_u128(self) -> u128 {
        self as u128
    }
    fn from_u128(v: u128) -> Self {
        v as u64
    }
}

impl Word for u128 {
    fn to_u128(self) -> u128 {
        self
    }
    fn from_u128(v: u128) -> Self {
        v
    }
}

/// The ciphertext modulus 2^log_q in container `S`.
pub fn modulus<S: Word>(log_q: u32) -> CiphertextModulus<S> {
    if log_q == S::BITS as u32 {
        CiphertextModulus::new_native()
    } else {
        CiphertextModulus::try_new_power_of_2(log_q as usize)
            .expect("a power of two below the container width")
    }
}

/// Mask of the low `bits` bits.
pub fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// Centred representative of v mod 2^bits (the ciphertext coefficients the NTT products take).
pub fn centred(v: u128, bits: u32) -> i128 {
    let v = v & low_mask(bits);
    if bits < 128 && v >= 1u128 << (bits - 1) {
        (v as i128).wrapping_sub((1u128 << bits) as i128)
    } else {
        v as i128
    }
}

/// A client's secret key for one ring degree and container.
pub struct ClientKey<S: Word> {
    pub sk: GlweSecretKeyOwned<S>,
    seeder: Box<dyn Seeder>,
    /// The CSPRNG of the encryption errors (seeded by the operating system).
    noise: rand_chacha::ChaCha20Rng,
    /// The key in NTT form, per ciphertext modulus (decryption by NTT products).
    ntt: std::sync::Mutex<std::collections::HashMap<u32, std::sync::Arc<(CrtNtt, NttPoly)>>>,
}

/// One query ciphertext as it travels: the body (integers mod 2^log_q) and the mask seed.
pub struct Query {
    pub body: Vec<u128>,
    pub seed: u128,
}

impl<S: Word> ClientKey<S> {
    /// A fresh key: coefficients uniform in {-1, 0, 1} (the ternary secret the HE standard's
    /// 128-bit table assumes, docs/protocol-reference.md 5, as SEAL and OpenCheetah use it),
    /// drawn from the OS-seeded ChaCha20 CSPRNG by rejection sampling; -1 is 2^w - 1 in the
    /// container, which the wrapping arithmetic of the products turns into -1 mod q.
    pub fn new(n: usize) -> ClientKey<S> {
        use rand_core::RngCore;
        let seeder = new_seeder();
        let mut g = crate::ot::prg::os_rng().expect("the operating system's entropy source");
        // 2^64 - 1 is a multiple of 3, so [0, 2^64 - 1) splits evenly into the three values.
        let limit = u64::MAX;
        let coeffs: Vec<S> = (0..n)
            .map(|_| {
                loop {
                    let v = g.next_u64();
                    if v < limit {
                        break match v % 3 {
                            0 => S::ZERO,
                            1 => S::ONE,
                            _ => S::ZERO.wrapping_sub(S::ONE),
                        };
                    }
                }
            })
            .collect();
        let sk = GlweSecretKey::from_container(coeffs, PolynomialSize(n));
        ClientKey {
            sk,
            seeder,
            noise: g,
            ntt: Default::default(),
        }
    }

    /// The key's NTT form for modulus 2^log_q (products of centred coefficients mod q with a
    /// ternary key: |V| < N 2^(log_q - 1)), made once per modulus.
    fn ntt_key(&self, log_q: u32) -> std::sync::Arc<(CrtNtt, NttPoly)> {
        let mut m = self.ntt.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(log_q)
            .or_insert_with(|| {
                let n = self.sk.polynomial_size().0;
                let ntt = CrtNtt::new(n, bound_bits(log_q, 2, n as u64, 1))
                    .expect("NTT primes exist for power-of-two N >= 16");
                let s: Vec<i128> = self.coefficients().iter().map(|&c| c as i128).collect();
                let f = ntt.forward(&s);
                std::sync::Arc::new((ntt, f))
            })
            .clone()
    }

    /// The key's coefficients as signed integers (for tests of its distribution).
    pub fn coefficients(&self) -> Vec<i8> {
        self.sk
            .as_ref()
            .iter()
            .map(|&c| {
                if c == S::ZERO {
                    0
                } else if c == S::ONE {
                    1
                } else {
                    -1
                }
            })
            .collect()
    }

    /// Encrypts plaintext coefficients `m` (mod t) as round(q m / t) (Delta * m when t is a
    /// power of two, [`PlainModulus::encode`]), seeded, with a rounded Gaussian error of
    /// standard deviation `error_std` (absolute), in tfhe's GLWE convention (body = mask * s +
    /// plaintext + error mod q). The mask is what tfhe's decompression expands from the seed
    /// (the server's [`decompress`] runs the same code); mask * s is one NTT product with the
    /// key's NTT form, as decryption does, instead of tfhe's generic polynomial product; the
    /// error comes from the key's OS-seeded ChaCha20 CSPRNG.
    pub fn encrypt(&mut self, m: &[u128], t: &PlainModulus, log_q: u32, error_std: f64) -> Query {
        let n = m.len();
        let qmask = low_mask(log_q);
        let seed = self.seeder.seed();
        let (mask, _) = decompress::<S>(
            &Query {
                body: vec![0; n],
                seed: seed.0,
            },
            log_q,
        );
        let (ntt, key) = &*self.ntt_key(log_q);
        let mut prod = ntt.zero();
        let centred_mask: Vec<i128> = mask.iter().map(|&v| centred(v, log_q)).collect();
        ntt.mul_acc(&mut prod, &ntt.forward(&centred_mask), key);
        let prod = ntt.inverse(prod);
        let body = m
            .iter()
            .zip(prod)
            .map(|(&v, p)| {
                let e = gaussian(&mut self.noise, error_std) as u128;
                p.wrapping_add(t.encode(t.reduce(v), log_q)).wrapping_add(e) & qmask
            })
            .collect();
        Query { body, seed: seed.0 }
    }

    /// Decrypts a truncated response: `c1` at `c1_bits` for all N coefficients, `c0` at
    /// `c0_bits` at the given coefficients (the rest unused). Returns, for each of those
    /// coefficients, the decoded value mod t and the error |phase - encode(value)| in units
    /// of 2^-log_q.
    pub fn decrypt(
        &self,
        c1: &[u128],
        c1_bits: u32,
        c0: &[(usize, u128)],
        c0_bits: u32,
        t: &PlainModulus,
        log_q: u32,
    ) -> Vec<(u128, u128)> {
        // phase = body - mask * s mod q (tfhe's GLWE convention), the product by NTTs over
        // 62-bit primes, exact (as the server's products): the mask centred mod q.
        let qmask = low_mask(log_q);
        let (ntt, key) = &*self.ntt_key(log_q);
        let mask: Vec<i128> = c1
            .iter()
            .map(|&v| centred(v << (log_q - c1_bits), log_q))
            .collect();
        let mut prod = ntt.zero();
        ntt.mul_acc(&mut prod, &ntt.forward(&mask), key);
        let prod = ntt.inverse(prod);
        c0.iter()
            .map(|&(i, v)| {
                let body = (v << (log_q - c0_bits)) & qmask;
                t.decode(body.wrapping_sub(prod[i]) & qmask, log_q)
            })
            .collect()
    }
}

/// A Gaussian of standard deviation `std` rounded to an integer (Box-Muller over two 53-bit
/// uniforms of `g`), as a two's-complement word.
fn gaussian(g: &mut impl rand_core::RngCore, std: f64) -> i128 {
    let unit =
        |g: &mut dyn rand_core::RngCore| ((g.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (unit(g), unit(g));
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (z * std).round() as i128
}

/// The server's view of a query: both polynomials as integers mod 2^log_q.
pub fn decompress<S: Word>(q: &Query, log_q: u32) -> (Vec<u128>, Vec<u128>) {
    let w = S::BITS as u32;
    let body: Vec<S> = q
        .body
        .iter()
        .map(|&v| S::from_u128(v << (w - log_q)))
        .collect();
    let seeded = SeededGlweCiphertext::from_container(
        body,
        GlweSize(2),
        CompressionSeed::from(Seed(q.seed)),
        modulus::<S>(log_q),
    );
    let ct = seeded.decompress_into_glwe_ciphertext();
    let n = q.body.len();
    let data = ct.as_ref();
    let conv = |s: &[S]| s.iter().map(|&c| c.to_u128() >> (w - log_q)).collect();
    (conv(&data[..n]), conv(&data[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<S: Word>(log_q: u32, log_t: u32, c1_bits: u32, c0_bits: u32) -> u128 {
        round_trip_t::<S>(log_q, PlainModulus::pow2(log_t).unwrap(), c1_bits, c0_bits)
    }

    fn round_trip_t<S: Word>(log_q: u32, t: PlainModulus, c1_bits: u32, c0_bits: u32) -> u128 {
        let n = 512;
        let mut k = ClientKey::<S>::new(n);
        let m: Vec<u128> = (0..n as u128).map(|i| (i * 7919 + 3) % t.t).collect();
        let q = k.encrypt(&m, &t, log_q, 3.2);
        let (mask, body) = decompress::<S>(&q, log_q);
        let rd = |v: u128, bits: u32| {
            let drop = log_q - bits;
            if drop == 0 {
                v
            } else {
                ((v + (1u128 << (drop - 1))) >> drop) & low_mask(bits)
            }
        };
        let c1: Vec<u128> = mask.iter().map(|&v| rd(v, c1_bits)).collect();
        let c0: Vec<(usize, u128)> = body
            .iter()
            .enumerate()
            .map(|(i, &v)| (i, rd(v, c0_bits)))
            .collect();
        let out = k.decrypt(&c1, c1_bits, &c0, c0_bits, &t, log_q);
        let mut max = 0;
        for (i, (v, e)) in out.iter().enumerate() {
            assert_eq!(*v, m[i], "coefficient {i}");
            max = max.max(*e);
        }
        max
    }

    /// |error| of every coefficient of `encryptions` fresh queries of `n` coefficients,
    /// decrypted without truncation (c1 and c0 at log q bits): the fresh error itself.
    fn fresh_errors<S: Word>(log_q: u32, log_t: u32, n: usize, encryptions: usize) -> Vec<u128> {
        let t = PlainModulus::pow2(log_t).unwrap();
        let mut k = ClientKey::<S>::new(n);
        let mut all = Vec::with_capacity(n * encryptions);
        for j in 0..encryptions {
            let m: Vec<u128> = (0..n as u128)
                .map(|i| (i * 7919 + 3 + j as u128) % t.t)
                .collect();
            let q = k.encrypt(&m, &t, log_q, 3.2);
            let (mask, body) = decompress::<S>(&q, log_q);
            let c0: Vec<(usize, u128)> = body.into_iter().enumerate().collect();
            for (i, (v, e)) in k
                .decrypt(&mask, log_q, &c0, log_q, &t, log_q)
                .into_iter()
                .enumerate()
            {
                assert_eq!(v, m[i], "coefficient {i}");
                all.push(e);
            }
        }
        all
    }

    /// The fresh error has standard deviation 3.2, checked on its second moment.
    ///
    /// The error e is a Gaussian of sigma = 3.2 rounded to an integer; decrypt returns |e|,
    /// which keeps e^2. With the rounding independent of the Gaussian (to a good
    /// approximation at this width):
    ///   E[e^2] = sigma^2 + 1/12 = 10.24 + 0.083 = 10.323,
    ///   E[e^4] = 3 sigma^4 + 6 sigma^2 / 12 + 1/80 = 314.57 + 5.12 + 0.01 = 319.70,
    ///   Var[e^2] = 319.70 - 10.323^2 = 213.1.
    /// Over n = 8 x 4096 = 32768 coefficients the mean of e^2 has standard deviation
    /// sqrt(213.1 / 32768) = 0.0806 (the central limit theorem). Band: 10.323 +- 6 x 0.0806
    /// = [9.84, 10.81], which a sigma of 3.2 leaves with probability about 2e-9. It
    /// accepts sigma^2 + 1/12 in it only, sigma in [3.124, 3.275]: sigma = 2.5 (E[e^2] 6.33)
    /// and sigma = 4.0 (16.08) fail, and so do 3.0 (9.08) and 3.4 (11.64).
    #[test]
    fn fresh_noise_has_the_requested_width() {
        for (name, e) in [
            ("u64, log q 43", fresh_errors::<u64>(43, 26, 4096, 8)),
            ("u128, log q 109", fresh_errors::<u128>(109, 37, 4096, 8)),
        ] {
            assert_eq!(e.len(), 32768);
            let m2 = e.iter().map(|&x| (x * x) as f64).sum::<f64>() / e.len() as f64;
            assert!(
                (9.84..=10.81).contains(&m2),
                "{name}: mean squared fresh error {m2}, want 10.32 (sigma 3.2)"
            );
        }
    }

    #[test]
    fn encryptions_of_one_plaintext_differ_in_mask_and_error() {
        let n = 1024;
        let t = PlainModulus::pow2(20).unwrap();
        let mut k = ClientKey::<u64>::new(n);
        let m: Vec<u128> = (0..n as u128).map(|i| i % t.t).collect();
        let (a, b) = (k.encrypt(&m, &t, 43, 3.2), k.encrypt(&m, &t, 43, 3.2));
        assert_ne!(a.seed, b.seed);
        assert_ne!(a.body, b.body);
        // The errors themselves differ (not only the masks): phase - encode(m) per query.
        let errors = |q: &Query| {
            let (mask, body) = decompress::<u64>(q, 43);
            let c0: Vec<(usize, u128)> = body.into_iter().enumerate().collect();
            k.decrypt(&mask, 43, &c0, 43, &t, 43)
                .into_iter()
                .map(|(v, e)| {
                    assert!(v < t.t);
                    e
                })
                .collect::<Vec<_>>()
        };
        let (ea, eb) = (errors(&a), errors(&b));
        assert_ne!(ea, eb);
        assert!(ea.iter().any(|&e| e != 0));
    }

    #[test]
    fn truncated_round_trip() {
        round_trip::<u64>(43, 26, 39, 27);
        round_trip::<u64>(64, 30, 43, 31);
        round_trip::<u128>(109, 37, 50, 38);
        // Packed layers: plaintext moduli above 64 bits.
        round_trip::<u128>(120, 90, 103, 91);
    }

    #[test]
    fn odd_plaintext_modulus_round_trip() {
        // CRT products of four 19- and 20-bit primes (t odd, not dividing q): the encoding
        // round(q m / t) decrypts exactly, truncated as the model truncates (c0 at log t + 1,
        // c1 at log t + 13 bits).
        for w in [19, 20] {
            let moduli = crate::model::linear::crt_moduli(w, 4).unwrap();
            let t = crate::verify::plain::Crt::new(&moduli).unwrap().t;
            round_trip_t::<u128>(t.log_t + 20, t, t.log_t + 13, t.log_t + 1);
        }
        let t = PlainModulus::new(1_000_003).unwrap();
        round_trip_t::<u64>(44, t, 33, 21);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    /// The secret is ternary and uniform: over 4 keys of N = 4096 (16384 coefficients) each
    /// value comes about 5461 times (binomial standard deviation about 60); a binary key
    /// (no -1) or a skewed one fails. Band: +-400 (more than 6 standard deviations).
    #[test]
    fn secret_key_is_uniform_ternary() {
        let mut counts = [0u32; 3];
        for _ in 0..4 {
            let k = ClientKey::<u64>::new(4096);
            for c in k.coefficients() {
                counts[(c + 1) as usize] += 1;
            }
        }
        for (v, &c) in [-1, 0, 1].iter().zip(&counts) {
            assert!((5061..=5861).contains(&c), "value {v}: {c} of 16384");
        }
        // Two fresh keys differ.
        let (a, b) = (ClientKey::<u64>::new(64), ClientKey::<u64>::new(64));
        assert_ne!(a.coefficients(), b.coefficients());
    }
}
