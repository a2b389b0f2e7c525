//! Several real processes on one store. The test binary runs itself as the children
//! (`mp_child`, told its role through the environment) and synchronises with them through
//! their stdin/stdout pipes.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use numpack::{DType, OpenOptions, Store};

const CHILD: &str = "mp_child";
const ENV_ROLE: &str = "NPK_MP_ROLE";
const ENV_STORE: &str = "NPK_MP_STORE";
const ENV_ID: &str = "NPK_MP_ID";

fn spawn_role(role: &str, path: &Path, id: u64) -> Proc {
    spawn_child(CHILD, &[(ENV_ROLE, role.to_string()), (ENV_STORE, path.display().to_string()), (ENV_ID, id.to_string())])
}

fn create(path: &Path) -> Store {
    Store::open(path, OpenOptions { create: true, ..Default::default() }).unwrap()
}

fn open(path: &Path) -> Store {
    Store::open(path, OpenOptions::default()).unwrap()
}

#[test]
#[ignore = "child process of the multiprocess tests; does nothing when run on its own"]
fn mp_child() {
    let Ok(role) = std::env::var(ENV_ROLE) else { return };
    let path = PathBuf::from(std::env::var(ENV_STORE).unwrap());
    let id = env_u64(ENV_ID, 0);
    match role.as_str() {
        "appender" => appender(&path, id),
        "replacer" => replacer(&path),
        "reader" => reader(&path),
        "creator" => creator(&path, id),
        "locker" => locker(&path),
        "after_kill" => after_kill(&path),
        r => panic!("unknown role {r}"),
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent appends from several processes: nothing lost, nothing doubled, each writer's
// rows in its order, and every writer's own new array in the catalogue.

const WRITERS: u64 = 4;
const ROWS_EACH: u64 = 200;

fn own_array(id: u64) -> (String, Vec<u64>, Vec<u8>) {
    let shape = vec![id + 1, 3];
    let data = words_to_bytes(&(0..(id + 1) * 3).map(|i| id * 1000 + i).collect::<Vec<_>>());
    (format!("own{id}"), shape, data)
}

fn appender(path: &Path, id: u64) {
    let mut s = open(path);
    announce(READY, "");
    assert_eq!(receive(), "go");
    for seq in 0..ROWS_EACH {
        s.append("log", DType::Uint64, &[1, 2], &words_to_bytes(&[id, seq])).unwrap();
        if seq == ROWS_EACH / 2 {
            let (name, shape, data) = own_array(id);
            s.save(&name, DType::Uint64, &shape, &data).unwrap();
        }
        // Odd writers close and reopen their handle twice along the way.
        if id % 2 == 1 && (seq == 60 + id || seq == 140 + id) {
            s.close().unwrap();
            s = open(path);
        }
        if id == 2 && seq % 50 == 25 {
            s.sync().unwrap();
        }
    }
    s.close().unwrap();
}

/// Checks that `data` (rows of `[writer, seq]`) holds, for each writer, its rows 0..n in
/// order; with `complete`, all of them.
fn check_log(data: &[u8], complete: bool) -> Result<(), String> {
    let w = bytes_to_words(data);
    let mut next = vec![0u64; WRITERS as usize];
    for (row, pair) in w.chunks_exact(2).enumerate() {
        let (id, seq) = (pair[0], pair[1]);
        if id >= WRITERS {
            return Err(format!("row {row} names writer {id}"));
        }
        if seq != next[id as usize] {
            return Err(format!("row {row}: writer {id} row {seq}, expected its row {}", next[id as usize]));
        }
        next[id as usize] += 1;
    }
    if complete && next.iter().any(|&n| n != ROWS_EACH) {
        return Err(format!("rows per writer: {next:?}, expected {ROWS_EACH} each"));
    }
    Ok(())
}

fn check_appends_complete(s: &Store, how: &str) {
    let (info, data) = s.load("log").unwrap();
    assert_eq!(info.shape, vec![WRITERS * ROWS_EACH, 2], "{how}");
    check_log(&data, true).unwrap_or_else(|e| panic!("{how}: {e}"));
    let mut want = vec!["log".to_string()];
    for id in 0..WRITERS {
        let (name, shape, data) = own_array(id);
        let (info, got) = s.load(&name).unwrap_or_else(|e| panic!("{how}: {name}: {e}"));
        assert_eq!((info.shape, got), (shape, data), "{how}: {name}");
        want.push(name);
    }
    want.sort();
    assert_eq!(s.names().unwrap(), want, "{how}");
}

#[test]
fn concurrent_appends_from_processes_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    // The parent's handle stays open throughout and is never reopened.
    let p = create(&path);
    p.save("log", DType::Uint64, &[0, 2], &[]).unwrap();
    let mut kids: Vec<Proc> = (0..WRITERS).map(|id| spawn_role("appender", &path, id)).collect();
    for k in &mut kids {
        assert!(k.wait_ready(), "a writer died while opening the store");
    }
    for k in &mut kids {
        k.send("go");
    }
    // While they write, every read is a per-writer prefix, and rows never go away.
    let (mut reads, mut last) = (0u64, 0u64);
    while kids.iter_mut().any(|k| k.child.try_wait().unwrap().is_none()) {
        let info = p.info("log").unwrap();
        let rows = info.shape[0];
        assert!(rows >= last, "rows went from {last} back to {rows}");
        let mut buf = vec![0u8; rows as usize * 16];
        p.read_range_into("log", 0, rows, &mut buf).unwrap();
        check_log(&buf, false).unwrap_or_else(|e| panic!("a read during the appends: {e}"));
        last = rows;
        reads += 1;
    }
    for (id, k) in kids.iter_mut().enumerate() {
        k.wait_ok(&format!("writer {id}"));
    }
    println!("{reads} reads while {WRITERS} processes appended");
    // Reads catch up on their own...
    check_appends_complete(&p, "the parent's handle without refresh");
    // ... and after an explicit refresh.
    p.refresh().unwrap();
    check_appends_complete(&p, "the parent's handle after refresh()");
    // Every writer closed, so metadata.npkm alone (what NumPack reads) has everything.
    let cat = numpack::metadata::decode(&std::fs::read(path.join(numpack::metadata::FILE_NAME)).unwrap()).unwrap();
    assert_eq!(cat["log"].shape, vec![WRITERS * ROWS_EACH, 2]);
    for id in 0..WRITERS {
        assert_eq!(cat[&own_array(id).0].shape, own_array(id).1);
    }
    let r = Store::open(&path, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    check_appends_complete(&r, "a fresh read-only handle");
}

// ---------------------------------------------------------------------------------------
// A reader process reading while a writer process replaces and appends whole rows.

/// u64 words per row: one 4 KiB page.
const WIDTH: usize = 512;
const START_ROWS: u64 = 48;
const WRITES: u64 = 300;

/// Every word of row `row` at version `v`.
fn tag(v: u64, row: u64) -> u64 {
    (v << 32) | row
}

fn rows_at(v: u64, rows: impl Iterator<Item = u64>) -> Vec<u8> {
    let mut w = Vec::new();
    for r in rows {
        w.extend(std::iter::repeat_n(tag(v, r), WIDTH));
    }
    words_to_bytes(&w)
}

const MISPLACED: &str = "a row holding another row's data";
const TORN_ROW: &str = "a torn row";
const TWO_VERSIONS: &str = "rows of two versions in one read";
const VERSION_BACK: &str = "version went back";
const ROWS_BACK: &str = "rows went back";
const LOAD_RACE: &str = "load() failed on a buffer size";
const READ_FAILED: &str = "a read failed";

/// Every committed state of the writer is "all rows at one version `v`, row `r` filled with
/// `tag(v, r)`". Returns `v` for `rows` (the logical indices read), or what is wrong.
fn check_rows(data: &[u8], rows: &[u64]) -> Result<Option<u64>, (&'static str, String)> {
    let w = bytes_to_words(data);
    let mut version = None;
    for (i, (chunk, &r)) in w.chunks_exact(WIDTH).zip(rows).enumerate() {
        let first = chunk[0];
        if first & 0xFFFF_FFFF != r {
            return Err((MISPLACED, format!("read row {i} (row {r}) holds row {}'s data", first & 0xFFFF_FFFF)));
        }
        if let Some(at) = chunk.iter().position(|&x| x != first) {
            return Err((TORN_ROW, format!("row {r}: word 0 is version {}, word {at} version {}", first >> 32, chunk[at] >> 32)));
        }
        match version {
            None => version = Some(first >> 32),
            Some(v) if v != first >> 32 => {
                return Err((TWO_VERSIONS, format!("versions {v} and {} (row {r})", first >> 32)));
            }
            _ => {}
        }
    }
    Ok(version)
}

fn replacer(path: &Path) {
    let s = open(path);
    announce(READY, "");
    assert_eq!(receive(), "go");
    let mut rng = Rng::new(77);
    let (mut v, mut rows) = (0u64, START_ROWS);
    for i in 0..WRITES {
        match i % 5 {
            0 | 1 => {
                v += 1;
                s.replace_range("t", DType::Uint64, 0, rows, &rows_at(v, 0..rows)).unwrap();
            }
            2 => {
                // Every row once, scattered, plus repeats, some negative.
                v += 1;
                let mut idx: Vec<i64> = (0..rows as i64).collect();
                for j in (1..idx.len()).rev() {
                    idx.swap(j, rng.below(j as u64 + 1) as usize);
                }
                for _ in 0..8 {
                    let r = rng.below(rows) as i64;
                    idx.push(if rng.chance(500) { r - rows as i64 } else { r });
                }
                let phys: Vec<u64> = idx.iter().map(|&i| if i < 0 { (i + rows as i64) as u64 } else { i as u64 }).collect();
                s.replace_rows("t", DType::Uint64, &idx, &rows_at(v, phys.into_iter())).unwrap();
            }
            _ => {
                let n = 1 + i % 2;
                s.append("t", DType::Uint64, &[n, WIDTH as u64], &rows_at(v, rows..rows + n)).unwrap();
                rows += n;
            }
        }
    }
    s.close().unwrap();
    announce("NPK_FINAL", &format!("{v} {rows}"));
}

/// Everything the reader process found wrong, by kind: (count, first example).
type Issues = std::collections::BTreeMap<&'static str, (u64, String)>;

fn note(issues: &mut Issues, kind: &'static str, msg: String) {
    issues.entry(kind).or_insert((0, msg)).0 += 1;
}

fn reader(path: &Path) {
    let s = Store::open(path, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    announce(READY, "");
    assert_eq!(receive(), "go");
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        receive();
        stop2.store(true, Ordering::Release);
    });
    let mut rng = Rng::new(5);
    let mut issues = Issues::new();
    let (mut reads, mut last_v, mut last_rows, mut versions) = (0u64, 0u64, 0u64, 0u64);
    loop {
        // Once told to stop, one more read: the writer is done, so it must be exact.
        let stopping = stop.load(Ordering::Acquire);
        let read = match reads % 3 {
            0 => s.load("t").map(|(info, data)| ("load", data, (0..info.shape[0]).collect::<Vec<u64>>(), info.shape[0])),
            1 => {
                let n = s.info("t").unwrap().shape[0];
                let mut buf = vec![0u8; n as usize * WIDTH * 8];
                s.read_range_into("t", 0, n, &mut buf).map(|_| ("read_range_into", buf, (0..n).collect(), n))
            }
            _ => {
                let n = s.info("t").unwrap().shape[0];
                let idx: Vec<i64> = (0..16).map(|_| rng.below(n) as i64).collect();
                let mut buf = vec![0u8; idx.len() * WIDTH * 8];
                s.read_rows_into("t", &idx, &mut buf).map(|_| ("read_rows_into", buf, idx.iter().map(|&i| i as u64).collect(), n))
            }
        };
        let what_is_load = reads % 3 == 0;
        reads += 1;
        let (what, data, rows, total) = match read {
            Ok(r) => r,
            Err(e) => {
                assert!(!stopping, "the final read failed: {e}");
                let kind = if what_is_load && e.code == numpack::ErrorCode::BufferSize { LOAD_RACE } else { READ_FAILED };
                note(&mut issues, kind, format!("read {reads}: {e}"));
                continue;
            }
        };
        match check_rows(&data, &rows) {
            Err((kind, e)) => {
                assert!(!stopping, "the final read is inconsistent: {e}");
                note(&mut issues, kind, format!("read {reads} ({what}): {e}"));
            }
            Ok(v) => {
                let v = v.unwrap_or(last_v);
                if v < last_v {
                    note(&mut issues, VERSION_BACK, format!("read {reads} ({what}): version {v} after {last_v}"));
                }
                versions += (v > last_v) as u64;
                last_v = v;
            }
        }
        if total < last_rows {
            note(&mut issues, ROWS_BACK, format!("read {reads} ({what}): {total} rows after {last_rows}"));
        }
        last_rows = total;
        if stopping {
            break;
        }
    }
    for (kind, (n, first)) in &issues {
        announce("NPK_ISSUE", &format!("{kind}|{n}|{first}"));
    }
    announce("NPK_READS", &format!("{reads} {versions} {last_v} {last_rows}"));
}

/// Runs a writer process and a reader process on one store; returns the reader's issues:
/// (kind, count, first example).
fn reader_against_writer() -> Vec<(String, u64, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let p = create(&path);
    p.save("t", DType::Uint64, &[START_ROWS, WIDTH as u64], &rows_at(0, 0..START_ROWS)).unwrap();
    p.close().unwrap();
    let mut writer = spawn_role("replacer", &path, 0);
    let mut reader = spawn_role("reader", &path, 0);
    assert!(writer.wait_ready() && reader.wait_ready());
    reader.send("go");
    writer.send("go");
    let fin = writer.expect_line("NPK_FINAL").expect("the writer failed");
    writer.wait_ok("the writer");
    reader.send("stop");
    let mut issues = Vec::new();
    let stats = loop {
        let line = reader.expect_line("NPK_").expect("the reader failed (its panic is above)");
        if let Some(issue) = line.strip_prefix("ISSUE ") {
            let mut f = issue.splitn(3, '|');
            let (kind, n, first) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            issues.push((kind.to_string(), n.parse().unwrap(), first.to_string()));
        } else if let Some(stats) = line.strip_prefix("READS ") {
            break stats.to_string();
        }
    };
    reader.wait_ok("the reader");
    let f: Vec<u64> = fin.split(' ').map(|x| x.parse().unwrap()).collect();
    let r: Vec<u64> = stats.split(' ').map(|x| x.parse().unwrap()).collect();
    println!("reader: {} reads saw {} version changes; last read version {} with {} rows", r[0], r[1], r[2], r[3]);
    for (kind, n, first) in &issues {
        println!("reader: {n} x {kind}; first: {first}");
    }
    // The reader's last read came after the writer finished.
    assert_eq!((r[2], r[3]), (f[0], f[1]), "the reader's final read is not the final state");
    assert!(r[0] >= 20, "too few reads ({}) to mean anything", r[0]);
    let s = open(&path);
    let (info, data) = s.load("t").unwrap();
    assert_eq!(info.shape, vec![f[1], WIDTH as u64]);
    assert_eq!(check_rows(&data, &(0..f[1]).collect::<Vec<_>>()), Ok(Some(f[0])));
    issues
}

fn show(issues: &[(String, u64, String)]) -> String {
    issues.iter().map(|(k, n, first)| format!("  {n} x {k}; first: {first}")).collect::<Vec<_>>().join("\n")
}

/// A reader process copying while a writer process replaces and appends whole rows sees
/// only committed states: never rows of two versions in one read, torn rows, a version
/// going back, or a failed load. Readers copy optimistically between two equal, even
/// values of the shared change counter (odd while a committed change is being applied)
/// and fall back to reading under the store lock when it moved.
#[test]
fn reader_process_sees_only_committed_states() {
    let issues = reader_against_writer();
    assert!(issues.is_empty(), "reads by another process saw uncommitted states:\n{}", show(&issues));
}

/// Two handles on one store (as two processes would have), one appending in a tight loop,
/// the other calling `load`: every load returns one consistent version (it once took the
/// size and the rows in two separate reads and failed with BufferSize), and the loads keep
/// making progress against the busy writer.
#[test]
fn load_while_another_handle_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let s = create(&path);
    s.save("t", DType::Uint64, &[0, 4], &[]).unwrap();
    let w = open(&path);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let appender = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            w.append("t", DType::Uint64, &[1, 4], &[0u8; 32]).unwrap();
        }
    });
    let t = Instant::now();
    let mut failure = None;
    let mut loads = 0;
    while failure.is_none() && t.elapsed() < Duration::from_secs(3) {
        failure = s.load("t").err();
        loads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    appender.join().unwrap();
    assert!(failure.is_none(), "load {loads} failed: {}", failure.unwrap());
}

// ---------------------------------------------------------------------------------------
// Two processes, both with the store open, each create an array, then both close: the
// catalogue must end up with both (NumPack 0.4.5 keeps only the last closer's).

fn creator(path: &Path, id: u64) {
    let s = open(path);
    announce(READY, "");
    assert_eq!(receive(), "go");
    s.save(&format!("made_by_{id}"), DType::Int64, &[10, 2], &words_to_bytes(&[id; 20])).unwrap();
    announce("NPK_SAVED", "");
    assert_eq!(receive(), "close");
    s.close().unwrap();
}

#[test]
fn two_processes_creating_arrays_both_survive_close() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    create(&path).close().unwrap();
    let mut kids: Vec<Proc> = (0..2).map(|id| spawn_role("creator", &path, id)).collect();
    // Both have the store open (and have read its empty catalogue) before either creates.
    for k in &mut kids {
        assert!(k.wait_ready());
    }
    for k in &mut kids {
        k.send("go");
    }
    for k in &mut kids {
        assert!(k.expect_line("NPK_SAVED").is_some(), "a creator failed");
    }
    for k in &mut kids {
        k.send("close");
    }
    for k in &mut kids {
        k.wait_ok("a creator");
    }
    let cat = numpack::metadata::decode(&std::fs::read(path.join(numpack::metadata::FILE_NAME)).unwrap()).unwrap();
    assert_eq!(cat.keys().collect::<Vec<_>>(), ["made_by_0", "made_by_1"], "metadata.npkm after both closed");
    let s = open(&path);
    for id in 0..2u64 {
        let (info, data) = s.load(&format!("made_by_{id}")).unwrap();
        assert_eq!((info.shape, bytes_to_words(&data)), (vec![10, 2], vec![id; 20]));
    }
}

// ---------------------------------------------------------------------------------------
// A writer killed while it holds the store's lock: the kernel drops the flock, the next
// process recovers, and the store is consistent.

const KW: usize = 512;
const BATCH: u64 = 64;

/// Row `r` of array "k": every word is `r`.
fn k_rows(from: u64, n: u64) -> Vec<u8> {
    let mut w = Vec::with_capacity(n as usize * KW);
    for r in from..from + n {
        w.extend(std::iter::repeat_n(r, KW));
    }
    words_to_bytes(&w)
}

fn locker(path: &Path) {
    let s = open(path);
    announce(READY, "");
    assert_eq!(receive(), "go");
    let mut rows = s.info("k").unwrap().shape[0];
    for i in 0u64.. {
        s.append("k", DType::Uint64, &[BATCH, KW as u64], &k_rows(rows, BATCH)).unwrap();
        rows += BATCH;
        match i % 4 {
            // Rewrite the last batch with the same contents (a logged in-place change).
            1 => s.replace_range("k", DType::Uint64, rows - BATCH, BATCH, &k_rows(rows - BATCH, BATCH)).unwrap(),
            // Replace a side array whole (a file rename).
            2 => s.save("side", DType::Uint8, &[1 << 20], &vec![i as u8; 1 << 20]).unwrap(),
            3 if i % 16 == 3 => s.sync().unwrap(),
            _ => {}
        }
        if i == 3 {
            announce("NPK_STARTED", "");
        }
    }
}

fn after_kill(path: &Path) {
    let s = open(path);
    let rows = s.info("k").unwrap().shape[0];
    s.append("k", DType::Uint64, &[BATCH, KW as u64], &k_rows(rows, BATCH)).unwrap();
    s.close().unwrap();
    announce("NPK_DONE", &rows.to_string());
}

/// Tries to take the store's lock without waiting: true if someone else holds it.
fn lock_is_held(path: &Path) -> bool {
    let f = std::fs::File::open(path.join(numpack::wal::FILE_NAME)).unwrap();
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    let e = std::io::Error::last_os_error();
    assert_eq!(e.raw_os_error(), Some(libc::EWOULDBLOCK), "flock: {e}");
    true
}

fn check_k(s: &Store) -> u64 {
    let (info, data) = s.load("k").unwrap();
    let rows = info.shape[0];
    assert_eq!(rows % BATCH, 0, "a partial batch is visible: {rows} rows");
    for (r, chunk) in bytes_to_words(&data).chunks_exact(KW).enumerate() {
        assert!(chunk.iter().all(|&x| x == r as u64), "row {r} holds {:?}...", &chunk[..4]);
    }
    if s.contains("side").unwrap() {
        let (_, side) = s.load("side").unwrap();
        assert!(side.iter().all(|&b| b == side[0]), "array side mixes two saves");
    }
    rows
}

#[test]
fn writer_killed_holding_the_lock_blocks_nobody() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let p = create(&path);
    p.save("k", DType::Uint64, &[0, KW as u64], &[]).unwrap();
    p.close().unwrap();
    let mut w = spawn_role("locker", &path, 0);
    assert!(w.wait_ready());
    w.send("go");
    assert!(w.expect_line("NPK_STARTED").is_some(), "the writer failed");
    // Freeze the writer at random instants until one finds it holding the lock, then kill it.
    let pid = w.pid();
    let mut rng = Rng::new(9);
    let mut attempts = 0;
    loop {
        std::thread::sleep(Duration::from_micros(rng.range(500, 3000)));
        attempts += 1;
        assert!(attempts < 5000, "never caught the writer holding the lock");
        // SAFETY: signalling and waiting for our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let mut status = 0;
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        assert!(got == pid && libc::WIFSTOPPED(status), "the writer did not stop (status {status:#x})");
        if lock_is_held(&path) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            break;
        }
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let status = w.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!lock_is_held(&path), "the lock outlived the process that held it");
    // Another process opens, recovers and appends, within a deadline.
    let mut next = spawn_role("after_kill", &path, 0);
    let next_pid = next.pid();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = next.expect_line("NPK_DONE");
        let st = next.child.wait().unwrap();
        tx.send((line, st)).unwrap();
    });
    let t = Instant::now();
    let Ok((line, st)) = rx.recv_timeout(Duration::from_secs(60)) else {
        // SAFETY: killing our own child, which is stuck.
        unsafe { libc::kill(next_pid, libc::SIGKILL) };
        panic!("the next writer is still blocked after 60 s");
    };
    assert!(st.success(), "the next writer failed: {st}");
    let before: u64 = line.unwrap().parse().unwrap();
    let s = open(&path);
    let rows = check_k(&s);
    assert_eq!(rows, before + BATCH);
    println!("writer killed holding the lock after {attempts} freezes with {before} rows visible; next writer done in {:?}", t.elapsed());
}
