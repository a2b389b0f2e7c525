//! Helpers shared by the process-level tests (`crash.rs`, `multiprocess.rs`, ...): a tiny
//! deterministic PRNG, cheap pseudo-random payloads, the self-exec trick that runs one
//! `#[ignore]`d test of the current test binary as a child process, with a pipe handshake,
//! and access to the log header's `applied_end`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, OnceLock};

use numpack::{DType, Store};

/// xorshift64*: small, fast, and the same sequence everywhere for a given seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams (and 0 works).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x1234_5678_9ABC_DEF1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const POOL_LEN: usize = 1 << 16;
const CHUNK: usize = 4093;

fn pool() -> &'static [u8] {
    static POOL: OnceLock<Vec<u8>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut r = Rng::new(0xB17E5);
        (0..(POOL_LEN + CHUNK) / 8 + 1).flat_map(|_| r.next_u64().to_le_bytes()).collect()
    })
}

/// `len` pseudo-random bytes, determined by `rng`. Built from slices of a fixed random pool
/// at random offsets (one draw per ~4 KiB), so megabytes cost a memcpy even in debug builds.
pub fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let pool = pool();
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let off = rng.below(POOL_LEN as u64) as usize;
        let n = CHUNK.min(len - v.len());
        v.extend_from_slice(&pool[off..off + n]);
    }
    v
}

/// One array as the tests model it: logical contents only.
#[derive(Clone, PartialEq, Eq)]
pub struct Arr {
    pub dtype: DType,
    /// Logical shape (`shape[0]` = live rows).
    pub shape: Vec<u64>,
    /// Rows in the data file, deleted ones included (`ArrayInfo::physical_rows`).
    pub phys: u64,
    /// Shared between models until changed (`Arc::make_mut`), so models clone cheaply.
    pub data: Arc<Vec<u8>>,
}

impl Arr {
    pub fn rows(&self) -> u64 {
        self.shape[0]
    }
    pub fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<u64>() as usize * self.dtype.size()
    }
}

impl std::fmt::Debug for Arr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?} of {} rows ({} bytes, crc {:08x})", self.dtype.numpy_name(), self.shape, self.phys, self.data.len(), crc(&self.data))
    }
}

/// CRC32 of some bytes, to name contents in messages.
pub fn crc(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

pub type Model = BTreeMap<String, Arr>;

/// Everything the store holds, read through `store`.
pub fn snapshot(store: &Store) -> Model {
    let mut m = Model::new();
    for name in store.names().unwrap() {
        let (info, data) = store.load(&name).unwrap_or_else(|e| panic!("cannot load {name:?}: {e}"));
        m.insert(name, Arr { dtype: info.dtype, shape: info.shape, phys: info.physical_rows, data: Arc::new(data) });
    }
    m
}

/// Describes how two models differ (for failure messages).
pub fn diff(got: &Model, want: &Model) -> String {
    let mut out = Vec::new();
    for (n, a) in got {
        match want.get(n) {
            None => out.push(format!("  {n:?}: present {a:?}, expected absent")),
            Some(b) if a != b => {
                let first = a.data.iter().zip(b.data.iter()).position(|(x, y)| x != y);
                out.push(format!("  {n:?}: got {a:?}, expected {b:?}, first differing byte {first:?}"))
            }
            _ => {}
        }
    }
    for (n, b) in want {
        if !got.contains_key(n) {
            out.push(format!("  {n:?}: absent, expected {b:?}"));
        }
    }
    if out.is_empty() { "  (identical)".into() } else { out.join("\n") }
}

pub fn describe(m: &Model) -> String {
    m.iter().map(|(n, a)| format!("{n}={a:?}")).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------
// Self-exec: the parent test runs `current_exe() --exact <child test> --ignored`, passing
// its instructions in environment variables. The child test is `#[ignore]`d and returns at
// once when its variable is missing, so plain `cargo test -- --ignored` is harmless.

pub const READY: &str = "NPK_READY";

/// A child process running one test of this binary, with piped stdin/stdout.
pub struct Proc {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
    pub inp: Option<ChildStdin>,
}

pub fn spawn_child(test: &str, env: &[(&str, String)]) -> Proc {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("cannot spawn the test binary");
    let out = BufReader::new(child.stdout.take().unwrap());
    let inp = child.stdin.take();
    Proc { child, out, inp }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads the child's stdout until a line containing `marker`; returns the rest of that
    /// line after the marker, or `None` on end of file (the child died).
    pub fn expect_line(&mut self, marker: &str) -> Option<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            if let Some(at) = line.find(marker) {
                return Some(line[at + marker.len()..].trim().to_string());
            }
        }
    }

    pub fn wait_ready(&mut self) -> bool {
        self.expect_line(READY).is_some()
    }

    /// Sends one line to the child's stdin. A child that died is noticed when the parent
    /// next waits for a line from it or for its exit.
    pub fn send(&mut self, line: &str) {
        let inp = self.inp.as_mut().expect("stdin closed");
        let _ = writeln!(inp, "{line}").and_then(|_| inp.flush());
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the child and requires a clean exit.
    pub fn wait_ok(&mut self, what: &str) {
        self.inp = None;
        let st = self.child.wait().unwrap();
        assert!(st.success(), "{what} failed: {st}");
    }
}

/// Child side of the handshake: announce readiness on stdout.
pub fn announce(marker: &str, rest: &str) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "\n{marker} {rest}").unwrap();
    o.flush().unwrap();
}

/// Child side: block until the parent sends a line on stdin; returns it (empty at EOF).
pub fn receive() -> String {
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).unwrap();
    s.trim().to_string()
}

/// `u64` words to little-endian bytes.
pub fn words_to_bytes(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_to_words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Environment variable as a number, or `default`.
pub fn env_u64(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => {
            let v = v.trim();
            let parsed = if let Some(h) = v.strip_prefix("0x") { u64::from_str_radix(h, 16) } else { v.parse() };
            parsed.unwrap_or_else(|_| panic!("{key}={v} is not a number"))
        }
        Err(_) => default,
    }
}

/// Reads the log header's `applied_end` (end of the last record whose effects are done;
/// bytes 48..56 of the log file).
pub fn applied_end(store: &std::path::Path) -> [u8; 8] {
    let f = std::fs::File::open(store.join(numpack::wal::FILE_NAME)).unwrap();
    let mut b = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, 48).unwrap();
    b
}

/// Overwrites the log header's `applied_end`.
pub fn set_applied_end(store: &std::path::Path, b: [u8; 8]) {
    let f = std::fs::OpenOptions::new().write(true).open(store.join(numpack::wal::FILE_NAME)).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &b, 48).unwrap();
}
