//! Wire-protocol fuzzing (issue #13): a scripted hostile peer on either end of the verify
//! mode's HE protocol.
//!
//! An honest run of MiniONN's conv7 and fc is recorded byte for byte, each direction on its
//! own. A hostile client then replays the client's bytes to the real server, and a hostile
//! server replays the server's bytes to a real client, each time with structure-aware
//! mutations of the frames (a flipped bit, a cut, a frame dropped, repeated or swapped, a
//! wrong kind or length, random payloads, extreme numbers in the JSON of the hello and the
//! layer parameters, garbage inserted). Every case must end, within its time limit, in a
//! clean result or an error: no panic, no hang, and the process's peak memory stays under
//! 1 GB. A real client facing a replayed server never reports a correct run (its fresh key
//! cannot decrypt another run's responses).
//!
//! `HEQUANT_WIRE_FUZZ_CASES` sets the cases per role (default 150);
//! `HEQUANT_WIRE_FUZZ_SEED` the first case's seed. A failure prints the seed of its case.

use hequant::model::{self, EvalOptions};
use hequant::protocol::{CostModel, Protocol};
use hequant::verify::{self, RunOptions, client, server};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

/// How long a party may wait for the hostile peer before its read fails.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one case may take in all.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// MiniONN under hequant-naive, as the model reports it.
fn minionn_report() -> (
    hequant::workload::Network,
    CostModel,
    hequant::model::report::Report,
) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/networks/minionn-cifar10.toml");
    let net = hequant::spec::network::load(std::path::Path::new(path)).expect("minionn");
    let cm = CostModel::builtin().unwrap();
    let o = EvalOptions::new(Protocol::HequantNaive, &cm);
    let report = model::evaluate(&net, &o, &cm).expect("model");
    (net, cm, report)
}

fn plan() -> &'static verify::Plan {
    static PLAN: OnceLock<verify::Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let (net, cm, report) = minionn_report();
        let layers = vec!["conv7".to_string(), "fc".to_string()];
        let p = verify::plan(
            &net,
            &report,
            Protocol::HequantNaive,
            &cm,
            &EvalOptions::new(Protocol::HequantNaive, &cm).link,
            Some(&layers),
        )
        .expect("plan");
        assert_eq!(p.layers.len(), 2, "{:?}", p.skipped);
        p
    })
}

/// A stream that keeps a copy of everything written to it.
struct Tap {
    s: UnixStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Read for Tap {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.s.read(b)
    }
}

impl Write for Tap {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.s.write(b)?;
        self.log.lock().unwrap().extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socket pair");
    for s in [&a, &b] {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    (a, b)
}

/// The bytes an honest run sends: (client -> server, server -> client).
fn transcript() -> &'static (Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let (a, b) = pair();
        let (to_server, to_client) = (Arc::default(), Arc::default());
        let srv = Tap {
            s: a,
            log: Arc::clone(&to_client),
        };
        let cli = Tap {
            s: b,
            log: Arc::clone(&to_server),
        };
        let opts = RunOptions::default();
        let r = std::thread::scope(|sc| {
            let h = sc.spawn(|| server::serve(srv, plan(), &opts));
            let r = client::run(cli, plan(), &opts);
            h.join().expect("server thread").expect("server");
            r
        })
        .expect("the honest run completes");
        assert!(r.ok, "the honest run is correct");
        let c = to_server.lock().unwrap().clone();
        let s = to_client.lock().unwrap().clone();
        (c, s)
    })
}

/// Frames of a byte stream: (12-byte header, payload). A stream recorded from an honest
/// run always parses.
fn frames(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[i + 8..i + 12].try_into().unwrap()) as usize;
        let end = (i + 12 + len).min(bytes.len());
        out.push((bytes[i..i + 12].to_vec(), bytes[i + 12..end].to_vec()));
        i = end;
    }
    out
}

fn join(f: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    f.iter()
        .flat_map(|(h, p)| h.iter().chain(p))
        .copied()
        .collect()
}

const EXTREMES: [&str; 9] = [
    "0",
    "1",
    "-1",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e308",
    "-1e308",
    "340282366920938463463374607431768211456",
];

/// Replaces one number of a JSON text with an extreme value (None when there is none).
fn mutate_json_number(p: &[u8], r: &mut ChaCha20Rng) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(p).ok()?;
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            spans.push((s, i));
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return None;
    }
    let (s, e) = spans[r.next_u64() as usize % spans.len()];
    let v = EXTREMES[r.next_u64() as usize % EXTREMES.len()];
    Some([&b[..s], v.as_bytes(), &b[e..]].concat())
}

/// One or two structure-aware mutations of a recorded stream.
fn mutate(bytes: &[u8], r: &mut ChaCha20Rng) -> Vec<u8> {
    let mut f = frames(bytes);
    let rounds = 1 + (r.next_u64() % 2) as usize;
    for _ in 0..rounds {
        let n = f.len().max(1);
        let k = r.next_u64() as usize % n;
        match r.next_u64() % 11 {
            0 => {
                let mut s = join(&f);
                let bit = r.next_u64() as usize % (s.len() * 8).max(1);
                if let Some(x) = s.get_mut(bit / 8) {
                    *x ^= 1 << (bit % 8);
                }
                f = frames(&s);
                if f.is_empty() {
                    return s;
                }
            }
            1 => {
                let s = join(&f);
                let cut = r.next_u64() as usize % (s.len() + 1);
                return s[..cut].to_vec();
            }
            2 => {
                let len = match r.next_u64() % 4 {
                    0 => 0,
                    1 => u32::MAX,
                    2 => (f[k].1.len() as u32).wrapping_add(1),
                    _ => r.next_u64() as u32,
                };
                f[k].0[8..12].copy_from_slice(&len.to_le_bytes());
                return join(&f);
            }
            3 => {
                if !f.is_empty() {
                    f.remove(k);
                }
            }
            4 => {
                if !f.is_empty() {
                    let x = f[k].clone();
                    f.insert(k, x);
                }
            }
            5 => {
                if k + 1 < f.len() {
                    f.swap(k, k + 1);
                }
            }
            6 => {
                let kinds = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255];
                f[k].0[6] = kinds[r.next_u64() as usize % kinds.len()];
            }
            7 => {
                let p = &mut f[k].1;
                r.fill_bytes(p);
            }
            8 => {
                if let Some(p) = mutate_json_number(&f[k].1, r) {
                    f[k].0[8..12].copy_from_slice(&(p.len() as u32).to_le_bytes());
                    f[k].1 = p;
                }
            }
            9 => {
                let mut s = join(&f);
                let at = r.next_u64() as usize % (s.len() + 1);
                let mut g = vec![0u8; 1 + (r.next_u64() % 64) as usize];
                r.fill_bytes(&mut g);
                s.splice(at..at, g);
                return s;
            }
            _ => {
                if r.next_u64().is_multiple_of(2) {
                    f[k].0[0] ^= 0x20;
                } else {
                    f[k].0[4] = f[k].0[4].wrapping_add(1);
                }
            }
        }
    }
    join(&f)
}

/// A socket the hostile peer plays on.
trait Socket: Read + Write + Send + Sized + 'static {
    fn clone_socket(&self) -> Self;
    fn close_sending(&self);
}

impl Socket for UnixStream {
    fn clone_socket(&self) -> Self {
        self.try_clone().expect("clone")
    }
    fn close_sending(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Socket for std::net::TcpStream {
    fn clone_socket(&self) -> Self {
        self.try_clone().expect("clone")
    }
    fn close_sending(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// The hostile peer: writes `script` on `s`, closes its sending side, and reads whatever
/// comes back until the other side closes (so a party never blocks on a full socket).
fn play<S: Socket>(mut s: S, script: Vec<u8>) {
    let mut reader = s.clone_socket();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    for chunk in script.chunks(1 << 14) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    s.close_sending();
    let _ = drain.join();
}

/// What a case ended with.
enum End {
    Ok { correct: bool },
    Err(String),
}

/// Runs `party` on `stream` while `peer` plays the other end; panics (naming the seed) on
/// a panic of the party or a case over its time limit.
fn watch<S: Send + 'static>(
    seed: u64,
    stream: S,
    peer: std::thread::JoinHandle<()>,
    party: impl FnOnce(S) -> End + Send + 'static,
) -> End {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| party(stream)));
        let _ = tx.send(r.is_ok());
        r
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(true) => {}
        Ok(false) => panic!("case seed {seed}: the party panicked"),
        Err(_) => panic!("case seed {seed}: no end within {CASE_LIMIT:?} (a hang)"),
    }
    let end = h.join().expect("joined").expect("no panic");
    peer.join().expect("peer thread");
    end
}

/// Runs `party` against the hostile peer's `script` over a socket pair.
fn run_case(
    seed: u64,
    script: Vec<u8>,
    party: impl FnOnce(UnixStream) -> End + Send + 'static,
) -> End {
    let (a, b) = pair();
    let peer = std::thread::spawn(move || play(b, script));
    watch(seed, a, peer, party)
}

fn cases() -> (u64, u64) {
    let n = std::env::var("HEQUANT_WIRE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let s = std::env::var("HEQUANT_WIRE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    (s, n)
}

/// Peak resident memory of this test process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A client's end against a replayed server: never a passed check; an error, if any, that
/// says something.
fn client_error(seed: u64, end: End) -> Option<String> {
    match end {
        End::Ok { correct } => {
            assert!(
                !correct,
                "case seed {seed}: a replayed server passed the client's check"
            );
            None
        }
        End::Err(e) => {
            assert!(!e.is_empty(), "case seed {seed}: an empty error");
            Some(e)
        }
    }
}

/// Case `i`'s script: the recording as it is for case 0, mutated by its seed after.
fn script(recorded: &[u8], i: u64, seed: u64) -> Vec<u8> {
    if i == 0 {
        recorded.to_vec()
    } else {
        mutate(recorded, &mut ChaCha20Rng::seed_from_u64(seed))
    }
}

fn is_layer_error(e: &str) -> bool {
    plan().layers.iter().any(|l| e.contains(&l.layer.name))
}

/// The replay is deep enough to matter: an honest client's recorded bytes, replayed
/// unchanged, take the server through every layer to a clean end.
#[test]
fn an_unmutated_client_replay_runs_the_server_to_the_end() {
    let (to_server, _) = transcript();
    let end = run_case(0, to_server.clone(), |s| {
        match server::serve(s, plan(), &RunOptions::default()) {
            Ok(()) => End::Ok { correct: true },
            Err(e) => End::Err(e.to_string()),
        }
    });
    assert!(
        matches!(end, End::Ok { .. }),
        "the server refused an honest replay"
    );
}

#[test]
fn a_hostile_client_never_panics_or_hangs_the_server() {
    let (to_server, _) = transcript();
    let (seed0, n) = cases();
    let (mut errors, mut deep) = (0u64, 0u64);
    for i in 0..n {
        let seed = seed0 + i;
        let script = mutate(to_server, &mut ChaCha20Rng::seed_from_u64(seed));
        let end = run_case(seed, script, |s| {
            match server::serve(s, plan(), &RunOptions::default()) {
                Ok(()) => End::Ok { correct: true },
                Err(e) => End::Err(e.to_string()),
            }
        });
        if let End::Err(e) = end {
            errors += 1;
            assert!(!e.is_empty(), "case seed {seed}: an empty error");
            deep += is_layer_error(&e) as u64;
        }
    }
    eprintln!(
        "hostile client: {n} cases, {errors} ended in an error, {deep} of them inside a layer"
    );
    // Most mutations break the run, and a good share of them only after the handshake.
    assert!(errors * 2 > n, "{errors} errors in {n} cases");
    assert!(
        deep * 5 > errors,
        "only {deep} of {errors} errors inside a layer"
    );
    assert!(peak_rss() < 1 << 30, "peak memory {} B", peak_rss());
}

#[test]
fn a_hostile_server_never_panics_or_hangs_the_client_nor_passes_its_check() {
    let (_, to_client) = transcript();
    let (seed0, n) = cases();
    let (mut errors, mut deep) = (0u64, 0u64);
    // Unmutated first: a replayed honest server is still caught by the client's check.
    for i in 0..=n {
        let seed = seed0 + i;
        let script = script(to_client, i, seed);
        let end = run_case(seed, script, |s| {
            match client::run(s, plan(), &RunOptions::default()) {
                Ok(r) => End::Ok { correct: r.ok },
                Err(e) => End::Err(e.to_string()),
            }
        });
        if let Some(e) = client_error(seed, end) {
            errors += 1;
            deep += is_layer_error(&e) as u64;
        }
    }
    eprintln!(
        "hostile server: {n} cases, {errors} ended in an error, {deep} of them inside a layer"
    );
    assert!(
        deep * 5 > errors,
        "only {deep} of {errors} errors inside a layer"
    );
    assert!(peak_rss() < 1 << 30, "peak memory {} B", peak_rss());
}

// ---------------------------------------------------------------------------------------
// The non-linear half: the OT protocol of `verify`'s ReLU layers (hello, Chou-Orlandi base
// OTs, IKNP extension, the millionaire and the MUX, the reveal), over loopback TCP.

use hequant::verify::nonlinear::{self, NlPlan};
use std::net::{TcpListener, TcpStream};

fn nl_plan() -> &'static (NlPlan, CostModel) {
    static P: OnceLock<(NlPlan, CostModel)> = OnceLock::new();
    P.get_or_init(|| {
        let (net, cm, report) = minionn_report();
        let sel = vec!["relu6".to_string(), "relu7".to_string()];
        let p = nonlinear::plan(&net, &report, &cm, 1, Some(&sel)).expect("plan");
        assert_eq!(p.layers.len(), 2, "{:?}", p.skipped);
        (p, cm)
    })
}

fn nl_serve(s: TcpStream) -> End {
    match nonlinear::serve(s, &nl_plan().0, IO_TIMEOUT, None) {
        Ok(()) => End::Ok { correct: true },
        Err(e) => End::Err(e.to_string()),
    }
}

fn nl_client(s: TcpStream) -> End {
    let (p, cm) = nl_plan();
    let link = cm.link("lan").expect("lan");
    match nonlinear::run_client(s, p, &link, cm, IO_TIMEOUT, &|_| {}) {
        Ok(r) => End::Ok { correct: r.ok },
        Err(e) => End::Err(e.to_string()),
    }
}

/// What one direction of a recorded run sent.
type Log = Arc<Mutex<Vec<u8>>>;

/// Copies `from` to `to`, keeping a copy, until `from` ends; then closes `to`'s sending side.
fn forward(mut from: TcpStream, mut to: TcpStream, log: Log) {
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        log.lock().unwrap().extend_from_slice(&buf[..n]);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The bytes of an honest non-linear run, recorded by a proxy between the two parties:
/// (client -> server, server -> client).
fn nl_transcript() -> &'static (Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let srv_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (srv_addr, proxy_addr) = (srv_l.local_addr().unwrap(), proxy_l.local_addr().unwrap());
        let up: Log = Arc::default();
        let down: Log = Arc::default();
        let (u2, d2) = (Arc::clone(&up), Arc::clone(&down));
        let server = std::thread::spawn(move || nl_serve(srv_l.accept().unwrap().0));
        let proxy = std::thread::spawn(move || {
            let (c, _) = proxy_l.accept().unwrap();
            let s = TcpStream::connect(srv_addr).unwrap();
            let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
            let a = std::thread::spawn(move || forward(c, s, u2));
            let b = std::thread::spawn(move || forward(s2, c2, d2));
            a.join().unwrap();
            b.join().unwrap();
        });
        let end = nl_client(TcpStream::connect(proxy_addr).unwrap());
        assert!(
            matches!(end, End::Ok { correct: true }),
            "the honest run is correct"
        );
        assert!(matches!(server.join().unwrap(), End::Ok { .. }));
        proxy.join().unwrap();
        let c = up.lock().unwrap().clone();
        let s = down.lock().unwrap().clone();
        (c, s)
    })
}

/// Runs `party` on a loopback connection whose other end plays `script`.
fn run_tcp_case(seed: u64, script: Vec<u8>, party: fn(TcpStream) -> End) -> End {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        play(s, script)
    });
    watch(seed, TcpStream::connect(addr).unwrap(), peer, party)
}

fn nl_cases() -> (u64, u64) {
    let (s, n) = cases();
    let n = std::env::var("HEQUANT_WIRE_FUZZ_OT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n / 3);
    (s, n)
}

#[test]
fn a_hostile_ot_client_never_panics_or_hangs_the_server() {
    let (to_server, _) = nl_transcript();
    let (seed0, n) = nl_cases();
    let mut errors = 0u64;
    for i in 0..n {
        let seed = seed0 + i;
        let script = mutate(to_server, &mut ChaCha20Rng::seed_from_u64(seed));
        if let End::Err(e) = run_tcp_case(seed, script, nl_serve) {
            errors += 1;
            assert!(!e.is_empty(), "case seed {seed}: an empty error");
        }
    }
    eprintln!("hostile OT client: {n} cases, {errors} ended in an error");
    assert!(errors * 2 > n, "{errors} errors in {n} cases");
    assert!(peak_rss() < 1 << 30, "peak memory {} B", peak_rss());
}

#[test]
fn a_hostile_ot_server_never_panics_or_hangs_the_client_nor_passes_its_check() {
    let (_, to_client) = nl_transcript();
    let (seed0, n) = nl_cases();
    let mut errors = 0u64;
    for i in 0..=n {
        let seed = seed0 + i;
        let script = script(to_client, i, seed);
        if client_error(seed, run_tcp_case(seed, script, nl_client)).is_some() {
            errors += 1;
        }
    }
    eprintln!("hostile OT server: {n} cases, {errors} ended in an error");
    assert!(peak_rss() < 1 << 30, "peak memory {} B", peak_rss());
}
