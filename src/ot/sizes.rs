//! Exact communication cost of every protocol in this module: payload bytes each way and
//! rounds, as pure functions of the public parameters. No I/O.
//!
//! A protocol is described as a sequence of *steps*; in a step each party first sends its
//! messages (possibly none), then receives the peer's. Rounds follow the rule of
//! [`super::channel`]: a party counts one round each time it receives after having sent
//! since its previous receive; [`Cost::rounds`] is the maximum over the two parties.
//! [`Cost::flights`] is the number of sequential one-way message flights on the critical
//! path (Lamport depth). Costs of composed protocols are computed from the concatenated
//! step lists (not by adding rounds), so they are exact.
//!
//! Notation: u(n) = 128 * ceil(n / 8) bytes is the IKNP u-matrix for n OTs
//! (128 columns of n bits, each column padded to whole bytes);
//! pk(k) = ceil(k / 8) bytes for k packed bits.
//! The base-OT setup ([`base_setup`]) is a separate one-time cost and is not included
//! in any other function.

/// Payload bytes each way and latency of one protocol run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Payload bytes sent by party A.
    pub bytes_a_to_b: u64,
    /// Payload bytes sent by party B.
    pub bytes_b_to_a: u64,
    /// Max over both parties of the direction-change round counter.
    pub rounds: u64,
    /// Sequential one-way flights on the critical path.
    pub flights: u64,
}

/// A protocol as a list of steps (bytes A->B, bytes B->A).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    steps: Vec<(u64, u64)>,
}

impl Plan {
    /// Empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }
    /// Append one step.
    pub fn step(mut self, a_to_b: u64, b_to_a: u64) -> Plan {
        self.steps.push((a_to_b, b_to_a));
        self
    }
    /// Append another plan.
    pub fn then(mut self, other: &Plan) -> Plan {
        self.steps.extend_from_slice(&other.steps);
        self
    }
    /// Plan with the roles of A and B exchanged.
    pub fn swapped(&self) -> Plan {
        Plan {
            steps: self.steps.iter().map(|&(a, b)| (b, a)).collect(),
        }
    }
    /// Evaluate the plan.
    pub fn cost(&self) -> Cost {
        let (mut ra, mut rb) = (0u64, 0u64);
        let (mut sa, mut sb) = (false, false);
        let (mut da, mut db) = (0u64, 0u64);
        let mut c = Cost::default();
        for &(ab, ba) in &self.steps {
            c.bytes_a_to_b += ab;
            c.bytes_b_to_a += ba;
            let msg_a = if ab > 0 { Some(da + 1) } else { None };
            let msg_b = if ba > 0 { Some(db + 1) } else { None };
            if let Some(d) = msg_a {
                sa = true;
                c.flights = c.flights.max(d);
            }
            if let Some(d) = msg_b {
                sb = true;
                c.flights = c.flights.max(d);
            }
            if let Some(d) = msg_b {
                if sa {
                    ra += 1;
                }
                sa = false;
                da = da.max(d);
            }
            if let Some(d) = msg_a {
                if sb {
                    rb += 1;
                }
                sb = false;
                db = db.max(d);
            }
        }
        c.rounds = ra.max(rb);
        c
    }
}

fn u(n: u64) -> u64 {
    128 * n.div_ceil(8)
}
fn pk(bits: u64) -> u64 {
    bits.div_ceil(8)
}

/// One-time base-OT setup (128 Chou–Orlandi OTs in each direction, in parallel):
/// step 1 both send one point (32 bytes), step 2 both send 128 points (4096 bytes);
/// 4128 bytes each way, 2 rounds.
pub fn base_setup() -> Cost {
    Plan::new().step(32, 32).step(4096, 4096).cost()
}

/// Random OT, A = sender: B sends u(n) = 128 ceil(n/8) bytes; A sends nothing.
pub fn rot_plan(n: u64) -> Plan {
    Plan::new().step(0, u(n))
}
/// See [`rot_plan`].
pub fn rot(n: u64) -> Cost {
    rot_plan(n).cost()
}

/// Correlated OT with l-bit correlations, A = sender: B sends u(n), then A sends
/// pk(n l) = ceil(n l / 8) bytes of corrections.
pub fn cot_plan(n: u64, l: u32) -> Plan {
    Plan::new().step(0, u(n)).step(pk(n * l as u64), 0)
}
/// See [`cot_plan`].
pub fn cot(n: u64, l: u32) -> Cost {
    cot_plan(n, l).cost()
}

/// Chosen-message 1-of-2 OT of l-bit messages, A = sender: B sends u(n), then A sends
/// pk(2 n l) = ceil(2 n l / 8) bytes.
pub fn ot_plan(n: u64, l: u32) -> Plan {
    Plan::new().step(0, u(n)).step(pk(2 * n * l as u64), 0)
}
/// See [`ot_plan`].
pub fn ot(n: u64, l: u32) -> Cost {
    ot_plan(n, l).cost()
}

/// 1-out-of-2^m OT of r-bit messages, A = sender: B sends u(n m) (m ROTs per instance),
/// then A sends pk(n 2^m r) = ceil(n 2^m r / 8) bytes (all 2^m masked messages).
pub fn nchoose1_plan(n: u64, m: u32, r: u32) -> Plan {
    Plan::new()
        .step(0, u(n * m as u64))
        .step(pk(n * (1u64 << m) * r as u64), 0)
}
/// See [`nchoose1_plan`].
pub fn nchoose1(n: u64, m: u32, r: u32) -> Cost {
    nchoose1_plan(n, m, r).cost()
}

/// n AND (Beaver) triples: two ROTs per triple, one in each direction, in one step:
/// u(n) bytes each way.
pub fn and_triples_plan(n: u64) -> Plan {
    Plan::new().step(u(n), u(n))
}
/// See [`and_triples_plan`].
pub fn and_triples(n: u64) -> Cost {
    and_triples_plan(n).cost()
}

/// n AND gates on XOR-shared bits given triples: each party sends pk(2n) = ceil(2n/8)
/// bytes (its shares of d = x xor a and e = y xor b), in one step.
pub fn and_gates_plan(n: u64) -> Plan {
    Plan::new().step(pk(2 * n), pk(2 * n))
}
/// See [`and_gates_plan`].
pub fn and_gates(n: u64) -> Cost {
    and_gates_plan(n).cost()
}

/// Number of digits q = ceil(bits / m) and the widths of the digits (least significant first).
pub fn digits(bits: u32, m: u32) -> Vec<u32> {
    if bits == 0 || m == 0 {
        return Vec::new();
    }
    let q = bits.div_ceil(m);
    (0..q)
        .map(|j| if j + 1 < q { m } else { bits - m * (q - 1) })
        .collect()
}

/// AND gates per level of the millionaire combine tree for q leaves: a level with k nodes
/// has p = floor(k/2) pairs and needs p ANDs for lt and p - 1 for eq (the node holding the
/// least significant digit never needs eq); an odd last node passes up unchanged.
pub fn tree_levels(q: u32) -> Vec<u64> {
    let mut k = q as u64;
    let mut out = Vec::new();
    while k > 1 {
        let p = k / 2;
        out.push(2 * p - 1);
        k -= p;
    }
    out
}

/// Millionaire (CrypTFlow2 Alg. 1), A holds x, B holds y (bits-bit unsigned), digit size m;
/// output XOR shares of 1{x < y}. With q digits of widths m_j and T = sum of
/// [`tree_levels`] AND gates per element:
/// step 1: A sends u(T n) (triples), B sends u(T n) + sum_j u(n m_j) (triples, leaf OTs);
/// step 2: A sends sum_j pk(n 2^{m_j} 2) (leaf 1-of-2^{m_j} OTs with 2-bit messages (lt, eq));
/// then one step per tree level with g gates: pk(2 g n) bytes each way.
/// The triple part of step 1 is omitted when T = 0 (q = 1); bits = 0 costs nothing.
pub fn millionaire_plan(n: u64, bits: u32, m: u32) -> Plan {
    let ds = digits(bits, m);
    if n == 0 || ds.is_empty() {
        return Plan::new();
    }
    let levels = tree_levels(ds.len() as u32);
    let t: u64 = levels.iter().sum();
    let leaf_u: u64 = ds.iter().map(|&mj| u(n * mj as u64)).sum();
    let leaf_ct: u64 = ds.iter().map(|&mj| pk(n * (1u64 << mj) * 2)).sum();
    let mut p = Plan::new()
        .step(u(t * n), u(t * n) + leaf_u)
        .step(leaf_ct, 0);
    for g in levels {
        p = p.then(&and_gates_plan(g * n));
    }
    p
}
/// See [`millionaire_plan`].
pub fn millionaire(n: u64, bits: u32, m: u32) -> Cost {
    millionaire_plan(n, bits, m).cost()
}

/// DReLU on l-bit shares: the millionaire on l - 1 bits (A's input 2^{l-1} - 1 - (x_A mod
/// 2^{l-1}), B's input x_B mod 2^{l-1}); the MSBs are combined locally. l = 1 costs nothing.
pub fn drelu_plan(n: u64, l: u32, m: u32) -> Plan {
    millionaire_plan(n, l.saturating_sub(1), m)
}
/// See [`drelu_plan`].
pub fn drelu(n: u64, l: u32, m: u32) -> Cost {
    drelu_plan(n, l, m).cost()
}

/// B2A: one COT of l bits, A = COT sender: B sends u(n), A sends pk(n l).
pub fn b2a_plan(n: u64, l: u32) -> Plan {
    cot_plan(n, l)
}
/// See [`b2a_plan`].
pub fn b2a(n: u64, l: u32) -> Cost {
    b2a_plan(n, l).cost()
}

/// MUX: two COTs of l bits, one in each direction, in parallel:
/// step 1 u(n) each way, step 2 pk(n l) each way.
pub fn mux_plan(n: u64, l: u32) -> Plan {
    Plan::new()
        .step(u(n), u(n))
        .step(pk(n * l as u64), pk(n * l as u64))
}
/// See [`mux_plan`].
pub fn mux(n: u64, l: u32) -> Cost {
    mux_plan(n, l).cost()
}

/// ReLU = DReLU followed by MUX: drelu_plan(n, l, m) then mux_plan(n, l).
pub fn relu_plan(n: u64, l: u32, m: u32) -> Plan {
    drelu_plan(n, l, m).then(&mux_plan(n, l))
}
/// See [`relu_plan`].
pub fn relu(n: u64, l: u32, m: u32) -> Cost {
    relu_plan(n, l, m).cost()
}

/// [`crate::ot::arith::lift_pos`] of n values from l to l2 bits: one COT of l2 - l bits each.
pub fn lift_pos_plan(n: u64, l: u32, l2: u32) -> Plan {
    if l2 <= l {
        return Plan::new();
    }
    cot_plan(n, l2 - l)
}
/// See [`lift_pos_plan`].
pub fn lift_pos(n: u64, l: u32, l2: u32) -> Cost {
    lift_pos_plan(n, l, l2).cost()
}

/// Truncation by s bits of non-negative l-bit values (wrap correction by one COT of s bits,
/// A = sender): B sends u(n), A sends pk(n s). s = 0 costs nothing.
pub fn trunc_pos_plan(n: u64, _l: u32, s: u32) -> Plan {
    if s == 0 {
        return Plan::new();
    }
    cot_plan(n, s)
}
/// See [`trunc_pos_plan`].
pub fn trunc_pos(n: u64, l: u32, s: u32) -> Cost {
    trunc_pos_plan(n, l, s).cost()
}

/// Conversion of non-negative l-bit shares into shares mod p (CRT component): one COT mod p,
/// A = sender: B sends u(n), A sends pk(n bits(p)).
pub fn ring_to_mod_plan(n: u64, p: u64) -> Plan {
    cot_plan(n, super::iknp::mod_bits(p))
}
/// See [`ring_to_mod_plan`].
pub fn ring_to_mod(n: u64, p: u64) -> Cost {
    ring_to_mod_plan(n, p).cost()
}

/// Conversion of shares mod p into shares mod 2^l: one COT of l bits, A = sender:
/// B sends u(n), A sends pk(n l).
pub fn mod_to_ring_plan(n: u64, l: u32) -> Plan {
    cot_plan(n, l)
}
/// See [`mod_to_ring_plan`].
pub fn mod_to_ring(n: u64, l: u32) -> Cost {
    mod_to_ring_plan(n, l).cost()
}

/// Exact truncation of non-negative values: millionaire_plan(n, s, m) (low carry), then one
/// step B sends 2 u(n), then A sends pk(n s) + pk(n l) (wrap COT of s bits and carry B2A
/// COT of l bits). s = 0 costs nothing.
pub fn trunc_pos_exact_plan(n: u64, l: u32, s: u32, m: u32) -> Plan {
    if s == 0 || n == 0 {
        return Plan::new();
    }
    millionaire_plan(n, s, m)
        .step(0, 2 * u(n))
        .step(pk(n * s as u64) + pk(n * l as u64), 0)
}
/// See [`trunc_pos_exact_plan`].
pub fn trunc_pos_exact(n: u64, l: u32, s: u32, m: u32) -> Cost {
    trunc_pos_exact_plan(n, l, s, m).cost()
}

/// Ring extension l -> l2: millionaire_plan(n, l, m) (wrap) then b2a_plan(n, l2 - l).
pub fn extend_plan(n: u64, l: u32, l2: u32, m: u32) -> Plan {
    millionaire_plan(n, l, m).then(&b2a_plan(n, l2.saturating_sub(l)))
}
/// See [`extend_plan`].
pub fn extend(n: u64, l: u32, l2: u32, m: u32) -> Cost {
    extend_plan(n, l, l2, m).cost()
}

/// Max (argmax) of k values for n elements: a tree; a level with kk values has
/// p = floor(kk / 2) pairs and costs drelu_plan(n p, l, m) then mux_plan(n p, l)
/// (mux_plan(2 n p, l) with the index); an odd last value passes up.
pub fn max_plan(n: u64, k: u64, l: u32, m: u32, with_index: bool) -> Plan {
    let mut plan = Plan::new();
    let mut kk = k;
    while kk > 1 {
        let p = kk / 2;
        let w = if with_index { 2 } else { 1 };
        plan = plan
            .then(&drelu_plan(n * p, l, m))
            .then(&mux_plan(w * n * p, l));
        kk -= p;
    }
    plan
}
/// See [`max_plan`].
pub fn max(n: u64, k: u64, l: u32, m: u32, with_index: bool) -> Cost {
    max_plan(n, k, l, m, with_index).cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_rule() {
        assert_eq!(
            rot(8),
            Cost {
                bytes_a_to_b: 0,
                bytes_b_to_a: 128,
                rounds: 0,
                flights: 1
            }
        );
        assert_eq!(cot(8, 3).rounds, 1);
        assert_eq!(cot(8, 3).flights, 2);
        assert_eq!(
            base_setup(),
            Cost {
                bytes_a_to_b: 4128,
                bytes_b_to_a: 4128,
                rounds: 2,
                flights: 2
            }
        );
        assert_eq!(tree_levels(4), vec![3, 1]);
        assert_eq!(tree_levels(3), vec![1, 1]);
        assert_eq!(tree_levels(1), Vec::<u64>::new());
        assert_eq!(digits(15, 4), vec![4, 4, 4, 3]);
    }
}
