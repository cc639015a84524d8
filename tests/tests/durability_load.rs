//! Durability under load (issue 11, item 9): many concurrent writers through the local API,
//! the daemon killed with SIGKILL at random moments while they write, and a ledger of every
//! acknowledged write checked against what the restarted daemon holds.
//!
//! The rule the ledger encodes: a write answered 2xx is durable, so it survives every later
//! crash. A write sent and not answered may or may not have landed: an add may be present or
//! not, an update's value may be the last acknowledged one or any later one sent. A refused
//! connection (daemon down) sent nothing, so it cannot have landed.
//!
//! `ECHO_LOAD_SEED=N` replays another kill schedule and op mix (the seed is printed).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{parse_response, Api, HttpResponse, Node};
use serde_json::{json, Value};

const WRITERS: usize = 16;
const CYCLES: usize = 20;
/// Each cycle's kill falls this many milliseconds after the writers were let go.
const KILL_WINDOW_MS: (u64, u64) = (100, 1500);
/// Below this many acknowledged writes in all the test proves nothing.
const MIN_ACKED: u64 = 1000;
/// Share of ops that are adds (the rest update one of the writer's own objects).
const ADD_PERCENT: u64 = 30;
const DEFAULT_SEED: u64 = 0x0ec4_0d07_2024_0011;

/// SplitMix64: a small seeded generator (the test needs no statistical quality).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What became of one request.
enum Outcome {
    /// No connection: nothing was sent, so nothing can have landed.
    Refused,
    /// Sent (at least in part) and no response read: may or may not have landed.
    Unanswered(String),
    /// A response's status line arrived.
    Answered(HttpResponse),
}

/// One request on its own connection (the API has no keep-alive), never panicking: the
/// daemon may die at any moment.
fn send(api: &Api, method: &str, path: &str, body: Option<&Value>) -> Outcome {
    let authority = api.url.trim_start_matches("http://").trim_end_matches('/');
    let addr: SocketAddr = authority.parse().unwrap();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Outcome::Refused;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        api.token,
        body.len()
    );
    if let Err(e) = stream.write_all(req.as_bytes()) {
        return Outcome::Unanswered(format!("write: {e}"));
    }
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match parse_response(&raw) {
        Some(res) => Outcome::Answered(res),
        None => Outcome::Unanswered(match read {
            Err(e) => format!("read: {e} after {} bytes", raw.len()),
            Ok(n) => format!("{n} bytes, no complete response head"),
        }),
    }
}

/// One object a writer added and had acknowledged.
#[derive(Clone, Debug)]
struct Obj {
    /// The id from the 201, if its body could be read.
    id: Option<String>,
    /// The last value of `v` answered 2xx (0: the add's).
    acked: u64,
    /// The highest value of `v` sent.
    sent: u64,
}

/// One writer's ledger. Adds are named by the writer's sequence number `s` (the object
/// carries `w` and `s`), so an add is found without its id.
#[derive(Clone, Debug, Default)]
struct Ledger {
    /// Acknowledged adds.
    objs: BTreeMap<u64, Obj>,
    /// Adds sent and not (yet) answered, which may land: seq -> the daemon run sent to.
    maybe: BTreeMap<u64, u64>,
    /// Adds never acknowledged that a restart showed present: durable, so they stay.
    seen: BTreeSet<u64>,
    acked: u64,
    acked_adds: u64,
    unanswered: u64,
    refused: u64,
    /// Answers that were not 2xx, with what was asked.
    unexpected: Vec<String>,
}

/// What the main thread and the writers share.
struct Control {
    /// The running daemon's run number and API (a new port and token on every start);
    /// `None` while it is down.
    api: RwLock<Option<(u64, Api)>>,
    space: String,
    stop: AtomicBool,
    /// Requests in flight right now (counted under `api`'s read lock).
    in_flight: AtomicUsize,
    ledgers: Vec<Mutex<Ledger>>,
}

/// Sets `stop` when dropped, so a panicking main thread does not wait forever on writers.
struct StopOnDrop<'a>(&'a Control);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// One writer: adds and updates of its own objects, as fast as they are answered, across
/// kills and restarts, until `stop`.
fn writer(control: &Control, w: usize, seed: u64) {
    let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x1000_0000_01b3));
    let mut seq = 0u64;
    let ledger = &control.ledgers[w];
    let objects = format!("/v1/spaces/{}/objects", control.space);
    while !control.stop.load(Ordering::SeqCst) {
        let current = {
            let api = control.api.read().unwrap();
            if api.is_some() {
                control.in_flight.fetch_add(1, Ordering::SeqCst);
            }
            api.clone()
        };
        let Some((run, api)) = current else {
            thread::sleep(Duration::from_millis(2)); // down: wait for the restart
            continue;
        };
        let refused = op(ledger, &api, run, &objects, w, &mut seq, &mut rng);
        control.in_flight.fetch_sub(1, Ordering::SeqCst);
        if refused {
            thread::sleep(Duration::from_millis(5)); // the daemon is gone; try again soon
        }
    }
}

/// One add or update, written down as sent before it is sent and as acknowledged only
/// once answered 2xx. Returns whether it was refused (nothing sent).
#[allow(clippy::too_many_arguments)]
fn op(
    ledger: &Mutex<Ledger>,
    api: &Api,
    run: u64,
    objects: &str,
    w: usize,
    seq: &mut u64,
    rng: &mut Rng,
) -> bool {
    let ids: Vec<(u64, String)> = {
        let l = ledger.lock().unwrap();
        l.objs
            .iter()
            .filter_map(|(s, o)| o.id.clone().map(|id| (*s, id)))
            .collect()
    };
    if ids.is_empty() || rng.range(1, 100) <= ADD_PERCENT {
        *seq += 1;
        let s = *seq;
        ledger.lock().unwrap().maybe.insert(s, run);
        let body = json!({"@type": "Load", "w": w, "s": s, "v": 0});
        let outcome = send(api, "POST", objects, Some(&body));
        let mut l = ledger.lock().unwrap();
        match outcome {
            Outcome::Refused => {
                l.maybe.remove(&s);
                l.refused += 1;
                return true;
            }
            Outcome::Unanswered(_) => l.unanswered += 1,
            Outcome::Answered(res) if res.status == 201 => {
                l.maybe.remove(&s);
                let id = res.json().and_then(|v| v["id"].as_str().map(str::to_owned));
                let obj = Obj {
                    id,
                    acked: 0,
                    sent: 0,
                };
                l.objs.insert(s, obj);
                l.acked += 1;
                l.acked_adds += 1;
            }
            Outcome::Answered(res) if res.status == 401 => {
                // A token of an earlier run (the new run took the same port): refused
                // before any route, so nothing was written.
                l.maybe.remove(&s);
                l.refused += 1;
                return true;
            }
            Outcome::Answered(res) => {
                let msg = format!("POST {objects} {body} -> {} {}", res.status, res.body);
                l.unexpected.push(msg);
            }
        }
    } else {
        let (s, id) = ids[rng.next() as usize % ids.len()].clone();
        let v = {
            let mut l = ledger.lock().unwrap();
            let o = l.objs.get_mut(&s).unwrap();
            o.sent += 1;
            o.sent
        };
        let path = format!("{objects}/{id}");
        let body = json!({ "v": v });
        let outcome = send(api, "PATCH", &path, Some(&body));
        let mut l = ledger.lock().unwrap();
        match outcome {
            Outcome::Refused => {
                l.refused += 1;
                return true;
            }
            Outcome::Unanswered(_) => l.unanswered += 1,
            Outcome::Answered(res) if res.status == 200 => {
                l.objs.get_mut(&s).unwrap().acked = v;
                l.acked += 1;
                let shown = res.json().map(|o| o["v"].clone());
                if shown.is_some() && shown != Some(json!(v)) {
                    let msg = format!("PATCH {path} {body} answered an object with v {shown:?}");
                    l.unexpected.push(msg);
                }
            }
            Outcome::Answered(res) if res.status == 401 => {
                l.refused += 1;
                return true;
            }
            Outcome::Answered(res) => {
                let msg = format!("PATCH {path} {body} -> {} {}", res.status, res.body);
                l.unexpected.push(msg);
            }
        }
    }
    false
}

/// The daemon's `Load` objects as `(w, s)` -> (id, v); duplicates are reported.
fn holdings(
    api: &Api,
    space: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<(u64, u64), (String, u64)> {
    let path = format!("/v1/spaces/{space}/query");
    let body = json!({"type": "Load", "include_deleted": true});
    let res = match send(api, "POST", &path, Some(&body)) {
        Outcome::Answered(res) if res.status == 200 => res,
        Outcome::Answered(res) => panic!("POST {path}: {} {}", res.status, res.body),
        Outcome::Refused => panic!("POST {path}: connection refused by the restarted daemon"),
        Outcome::Unanswered(why) => {
            panic!("POST {path}: no answer from the restarted daemon: {why}")
        }
    };
    let items = res
        .json()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("query answered {}", res.body));
    let mut held = BTreeMap::new();
    for o in items {
        let (Some(w), Some(s), Some(v), Some(id)) = (
            o["w"].as_u64(),
            o["s"].as_u64(),
            o["v"].as_u64(),
            o["@id"].as_str(),
        ) else {
            problems.push(format!("malformed Load object {o}"));
            continue;
        };
        if let Some(first) = held.insert((w, s), (id.to_owned(), v)) {
            problems.push(format!("w={w} s={s} held twice: {first:?} and {o}"));
        }
    }
    held
}

/// Checks the daemon started after run `run` was killed against `snapshot`, the ledgers as
/// they stood once every request to run `run` had ended; the writers keep writing to the
/// new run meanwhile. Returns what is wrong and how many objects the daemon holds.
///
/// Settles what the restart decided about run `run`'s unanswered adds: those present are
/// durable from now on, those absent can no longer land.
fn check(
    api: &Api,
    control: &Control,
    snapshot: &[Ledger],
    run: u64,
    when: &str,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let held = holdings(api, &control.space, &mut problems);
    // Read after the query: whatever the daemon applied was written down as sent before.
    for (w, (ledger, before)) in control.ledgers.iter().zip(snapshot).enumerate() {
        let wu = w as u64;
        for (s, o) in &before.objs {
            let Some((id, v)) = held.get(&(wu, *s)) else {
                problems.push(format!(
                    "{when}: LOST acknowledged add w={w} s={s} (ledger {o:?})"
                ));
                continue;
            };
            if o.id.as_ref().is_some_and(|want| want != id) {
                problems.push(format!(
                    "{when}: w={w} s={s} has id {id}, the add answered {o:?}"
                ));
            }
            if *v < o.acked {
                problems.push(format!(
                    "{when}: LOST acknowledged update w={w} s={s} id={id}: v={v} \
                     after the restart, ledger {o:?}"
                ));
            }
        }
        let mut l = ledger.lock().unwrap();
        for s in &l.seen {
            if !held.contains_key(&(wu, *s)) {
                problems.push(format!(
                    "{when}: unacknowledged add w={w} s={s}, present after an earlier \
                     restart, is gone"
                ));
            }
        }
        let settled: Vec<u64> = l
            .maybe
            .iter()
            .filter(|(_, r)| **r <= run)
            .map(|(s, _)| *s)
            .collect();
        for s in settled {
            l.maybe.remove(&s);
            if held.contains_key(&(wu, s)) {
                l.seen.insert(s);
            }
        }
        for ((hw, s), (id, v)) in held.range((wu, 0)..=(wu, u64::MAX)) {
            debug_assert_eq!(*hw, wu);
            match l.objs.get(s) {
                Some(o) if *v > o.sent => problems.push(format!(
                    "{when}: w={w} s={s} id={id}: v={v} was never sent (ledger {o:?})"
                )),
                Some(_) => {}
                None if l.seen.contains(s) || l.maybe.contains_key(s) => {}
                None => problems.push(format!(
                    "{when}: w={w} s={s} id={id} is present, but it was never sent, or \
                     refused, or absent after an earlier restart"
                )),
            }
        }
    }
    for (w, s) in held.keys() {
        if *w as usize >= WRITERS {
            problems.push(format!("{when}: an object of writer {w}, s={s}"));
        }
    }
    (problems, held.len())
}

#[derive(Default, Clone, Copy)]
struct Totals {
    acked: u64,
    acked_adds: u64,
    unanswered: u64,
    refused: u64,
}

fn totals(ledgers: &[Ledger]) -> Totals {
    let mut t = Totals::default();
    for l in ledgers {
        t.acked += l.acked;
        t.acked_adds += l.acked_adds;
        t.unanswered += l.unanswered;
        t.refused += l.refused;
    }
    t
}

fn snapshot(control: &Control) -> Vec<Ledger> {
    control
        .ledgers
        .iter()
        .map(|l| l.lock().unwrap().clone())
        .collect()
}

/// Starts the daemon again on its data dir and asserts it serves: `ready` within
/// `READY_TIMEOUT` (`Node::start`), and a `status` that lists the space.
fn restart(node: &mut Node, space: &str, when: &str) -> Duration {
    let start = Instant::now();
    node.start();
    let took = start.elapsed();
    let status = node.status();
    let listed = status["spaces"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["space_key"] == space));
    if !listed {
        node.fail_with(&format!(
            "{when}: status after the restart lacks the space: {status}"
        ));
    }
    took
}

#[test]
fn sixteen_writers_lose_no_acknowledged_write_over_twenty_kill_9_cycles() {
    let seed = std::env::var("ECHO_LOAD_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("ECHO_LOAD_SEED is a u64"))
        .unwrap_or(DEFAULT_SEED);
    eprintln!(
        "durability under load: seed {seed} (ECHO_LOAD_SEED), {WRITERS} writers, {CYCLES} cycles"
    );
    let started = Instant::now();
    let (mut node, space) = Node::with_space("load");
    let control = Control {
        api: RwLock::new(None),
        space: space.clone(),
        stop: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        ledgers: (0..WRITERS).map(|_| Mutex::default()).collect(),
    };
    let mut rng = Rng(seed);
    let mut problems: Vec<String> = Vec::new();
    let mut restarts: Vec<Duration> = Vec::new();
    let mut at_last_kill = Totals::default();

    thread::scope(|scope| {
        let _stop = StopOnDrop(&control);
        *control.api.write().unwrap() = Some((0, node.api()));
        for w in 0..WRITERS {
            let control = &control;
            scope.spawn(move || writer(control, w, seed));
        }
        for cycle in 1..=CYCLES {
            let run = cycle as u64 - 1;
            let kill_at = rng.range(KILL_WINDOW_MS.0, KILL_WINDOW_MS.1);
            thread::sleep(Duration::from_millis(kill_at));

            let in_flight = control.in_flight.load(Ordering::SeqCst);
            node.kill9();
            // From here on no request reaches run `run`: wait until those that were sent
            // to it have ended (unanswered or refused), then take the ledger as it stands.
            *control.api.write().unwrap() = None;
            let drain = Instant::now();
            while control.in_flight.load(Ordering::SeqCst) > 0 {
                assert!(
                    drain.elapsed() < Duration::from_secs(30),
                    "cycle {cycle}: requests to the killed daemon did not end within 30 s"
                );
                thread::sleep(Duration::from_millis(1));
            }
            let before = snapshot(&control);
            assert!(
                in_flight > 0,
                "cycle {cycle}: no request was in flight at the kill, the writers were idle"
            );

            let took = restart(&mut node, &space, &format!("cycle {cycle}"));
            restarts.push(took);
            *control.api.write().unwrap() = Some((run + 1, node.api()));

            let check_start = Instant::now();
            let (found, n) = check(
                &node.api(),
                &control,
                &before,
                run,
                &format!("cycle {cycle}"),
            );
            let (now, last) = (totals(&before), at_last_kill);
            at_last_kill = now;
            eprintln!(
                "cycle {cycle:2}: kill at {kill_at:4} ms with {in_flight:2} in flight; run acked \
                 {:5}, unanswered {:2}, refused {:4}; ready after {:4} ms; {n:5} objects checked \
                 in {:4} ms{}",
                now.acked - last.acked,
                now.unanswered - last.unanswered,
                now.refused - last.refused,
                took.as_millis(),
                check_start.elapsed().as_millis(),
                if found.is_empty() {
                    String::new()
                } else {
                    format!(", {} PROBLEMS", found.len())
                },
            );
            problems.extend(found);
        }
        // The writers stop; what the last run acknowledged must survive a clean stop too.
        control.stop.store(true, Ordering::SeqCst);
    });

    let when = "after the clean stop";
    let before = snapshot(&control);
    node.stop();
    let took = restart(&mut node, &space, when);
    restarts.push(took);
    let (found, n) = check(&node.api(), &control, &before, CYCLES as u64, when);
    problems.extend(found);

    let end = snapshot(&control);
    let t = totals(&end);
    let landed: usize = end.iter().map(|l| l.seen.len()).sum();
    let unexpected: Vec<String> = before.iter().flat_map(|l| l.unexpected.clone()).collect();
    let max_restart = restarts.iter().max().copied().unwrap_or_default();
    eprintln!(
        "durability under load: {} acknowledged writes ({} adds, {} updates), {} unanswered, \
         {} refused ({landed} unanswered adds found durable), {CYCLES} kill -9 cycles and a clean stop, {n} objects at the end, restarts \
         {} ms max, {} problems, {} unexpected answers, {:.1} s",
        t.acked,
        t.acked_adds,
        t.acked - t.acked_adds,
        t.unanswered,
        t.refused,
        max_restart.as_millis(),
        problems.len(),
        unexpected.len(),
        started.elapsed().as_secs_f64()
    );
    if !problems.is_empty() || !unexpected.is_empty() {
        node.fail_with(&format!(
            "acknowledged writes lost or state wrong after kill -9 (seed {seed}):\n{}\n\
             unexpected answers:\n{}",
            problems.join("\n"),
            unexpected.join("\n")
        ));
    }
    assert!(
        t.acked > MIN_ACKED,
        "only {} writes were acknowledged: too few for the test to mean anything",
        t.acked
    );
    assert!(t.unanswered > 0, "no write was ever cut off by a kill");
    node.stop();
}
