//! Section 6: a discrete-event simulation of one SKU's sale past what DynamoDB Local can run (it
//! runs about 150-200 transactions a second here). C clients reserve one unit at a time, each
//! sending its next reserve as soon as the last one is answered, from one item with stock that
//! cannot run out, split into N shards, under the contention model's rules and parameters
//! (`integration_tests::contention`) and the store's placement and retry rules:
//!
//! - a reserve is one transaction on one shard (a random one, not one this request just found
//!   busy), its hold item in the shard's partition (the store's layout, `store::items::shard_pk`)
//!   and four items of their own (order key, reservation, order's reservation item, outbox);
//! - a transaction holds its shard for a hold time drawn from the model's log-normal, and is
//!   answered when that has passed; one that meets a held shard is cancelled at once
//!   (`TransactionConflict`); one whose partition lacks the write units (2 per item, per partition
//!   per second) is cancelled as throttled;
//! - the store's rules: on a sharded item a conflict sends the reserve to another shard at once,
//!   up to 2 others (`MAX_SHARD_HOPS`), then it backs off (full jitter, 10 ms doubling up to
//!   500 ms) and tries again, not counted among the 10 attempts, until the 5 s deadline (503); on
//!   one shard, and after throttling, the same transaction is sent again to the same shard, one
//!   of its 10 attempts, after the same backoff (and a conflict on a resend is one of them too).
//!   Not simulated: reads (a known layout needs none; a new process's first reserve goes blind to
//!   shard 0), and the store's attempt loop having a 5 s deadline of its own inside the
//!   request's (a request here ends at 5 s).
//!
//! With a [`Machine`], every transaction the model lets through also waits its turn at one
//! server answering `emulator_rate` a second, first come first served, as DynamoDB Local does (one
//! still waiting for its turn at its deadline is never sent), the bench's client sends on this
//! machine's cores, and the row ends as section 5's do ([`Ending::Drained`]): the same run as
//! section 5, to check the simulation against it. Without it: what AWS would do under the model,
//! to C = 10,000. A cancelled transaction is answered at once in both (as the model does);
//! on AWS it would take a round trip, so clients that meet conflicts would send a little less
//! often than here. Deterministic: a fixed seed per row.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use integration_tests::ContentionParams;
use serde::{Deserialize, Serialize};

use crate::stats::{round, Latency};

/// The store's retry policy (`store::RetryPolicy::default()`) and its placement's hops.
const MAX_ATTEMPTS: u32 = 10;
const BASE_DELAY_S: f64 = 0.010;
const MAX_DELAY_S: f64 = 0.500;
const DEADLINE_S: f64 = 5.0;
const MAX_SHARD_HOPS: u32 = 2;
/// Write units one reserve spends in its shard's partition: the shard and its hold item.
const UNITS_IN_SHARD_PARTITION: f64 = 4.0;

/// One row of the simulation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimCell {
    pub clients: usize,
    pub shards: u32,
    /// DynamoDB Local's transactions per second and the bench client's CPU time per attempt
    /// (ms), when the row is limited by this machine as section 5's was.
    pub emulator_rate: Option<f64>,
    pub client_cpu_ms: Option<f64>,
    pub requests: u64,
    /// Simulated seconds the rates are over (a drained row's: until its last answer).
    #[serde(default)]
    pub seconds: f64,
    pub successes_per_s: f64,
    pub conflicts_per_success: f64,
    /// Conflicts in the first simulated second (the sale's opening).
    #[serde(default)]
    pub opening_conflicts: u64,
    pub throttles: u64,
    pub unavailable: u64,
    /// Of those, the ones whose transaction was applied all the same (sent to DynamoDB Local
    /// before the deadline, answered after it).
    #[serde(default)]
    pub unavailable_applied: u64,
    pub unavailable_pct: f64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRun {
    /// The model's parameters, as it prints them.
    pub model: String,
    /// Simulated seconds of the rows on AWS (those as section 5 ran: its seconds per row).
    pub simulated_seconds: f64,
    pub cells: Vec<SimCell>,
}

/// A request in flight: when it started, and where its retries stand.
#[derive(Debug, Clone, Default)]
struct Request {
    started: f64,
    /// Attempts of the transaction being sent (the store's `commit`: up to 10, each after a
    /// backoff); a hop to another shard or a new round is a new transaction.
    attempts: u32,
    busy_rounds: u32,
    hops: u32,
    /// The shard of a transaction being sent again (after throttling, or a conflict on one
    /// shard): a resend goes where the first attempt went.
    pinned: Option<u32>,
    /// Shards found busy by this round (the next pick avoids them).
    busy: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Client `.0` sends an attempt of its request.
    Attempt(usize),
    /// Client `.0`'s attempt leaves it (after its CPU time).
    Sent(usize),
    /// Client `.0`'s transaction was answered: it succeeded.
    Answered(usize),
    /// Client `.0`'s request reached its deadline with its transaction still unanswered (in
    /// DynamoDB Local's queue): 503; `.1`: the transaction had been sent, and is applied after.
    TimedOut(usize, bool),
}

/// A time in whole nanoseconds, for the event queue's order.
fn at(t: f64) -> u64 {
    (t * 1e9) as u64
}

/// This machine, as the rows that compare with section 5 meet it: DynamoDB Local answering
/// `emulator_rate` transactions a second, one at a time, `emulator_turns` of them sent to it at
/// once, and the bench's own process sending attempts on `client_cores` cores, each taking
/// `client_cpu_s` of its CPU (measured in that run). A client woken by an answer or a timer waits
/// its turn behind the others (its task is queued); a client going on to another shard after a
/// conflict goes at once (its task is still running), its CPU time delaying the others.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    pub emulator_rate: f64,
    /// Requests DynamoDB Local takes at once (the model's turns): one that got its turn before
    /// its deadline is applied, one still waiting for it then is never sent.
    pub emulator_turns: usize,
    pub client_cpu_s: f64,
    /// The cores the bench process sends on.
    pub client_cores: f64,
}

struct Sale<'a> {
    params: &'a ContentionParams,
    shards: u32,
    machine: Option<Machine>,
    rng: fastrand::Rng,
    now: f64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    /// Per shard: until when a transaction holds it.
    held_until: Vec<f64>,
    /// Per shard's partition: its write units and when they were counted.
    units: Vec<(f64, f64)>,
    /// When DynamoDB Local is free again, and when the model's turns into it held now are freed.
    emulator_free: f64,
    turns: BinaryHeap<Reverse<u64>>,
    client_free: f64,
    requests: HashMap<usize, Request>,
    counting: bool,
    /// When clients stop starting new requests (those in flight go on to their answer), as
    /// section 5's clients do; `None`: the run is cut off at its end instead.
    stop_at: Option<f64>,
    /// Requests in flight, and when the last one ended.
    in_flight: usize,
    last_answer: f64,
    sent: u64,
    successes: u64,
    conflicts: u64,
    opening_conflicts: u64,
    throttles: u64,
    unavailable: u64,
    unavailable_applied: u64,
    latencies_ms: Vec<f64>,
}

impl Sale<'_> {
    fn schedule(&mut self, t: f64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at(t), self.seq, event)));
    }

    /// The store's backoff for the `n`th retry: uniform in [0, min(500 ms, 10 ms x 2^n)).
    fn delay(&mut self, n: u32) -> f64 {
        let cap = (BASE_DELAY_S * f64::from(1u32 << n.min(16))).min(MAX_DELAY_S);
        self.rng.f64() * cap
    }

    fn new_request(&mut self, client: usize, t: f64) {
        if self.stop_at.is_some_and(|stop| t >= stop) {
            return;
        }
        self.in_flight += 1;
        if self.counting {
            self.sent += 1;
        }
        self.requests.insert(client, Request { started: t, ..Request::default() });
        self.schedule(t, Event::Attempt(client));
    }

    /// The answer was 503 or a success: the client's next request starts now.
    fn finish(&mut self, client: usize, ok: bool) {
        let started = self.requests.get(&client).map_or(self.now, |r| r.started);
        if self.counting {
            if ok {
                self.successes += 1;
            } else {
                self.unavailable += 1;
            }
            self.latencies_ms.push((self.now - started) * 1000.0);
        }
        self.in_flight -= 1;
        self.last_answer = self.now;
        self.new_request(client, self.now);
    }

    /// A retry after backoff, or 503 when it would end past the deadline or the attempts are
    /// spent: `resend` on `shard` (the same transaction again, one of its 10 attempts), else a new
    /// round (a new placement, not counted among them).
    fn retry(&mut self, client: usize, resend: Option<u32>) {
        let mut request = self.requests.remove(&client).unwrap_or_default();
        let n = if resend.is_some() {
            request.attempts += 1;
            request.attempts
        } else {
            request.busy_rounds += 1;
            request.attempts = 0;
            request.busy_rounds
        };
        let delay = self.delay(n);
        let over = resend.is_some() && request.attempts >= MAX_ATTEMPTS;
        let started = request.started;
        (request.hops, request.busy, request.pinned) = (0, Vec::new(), resend);
        self.requests.insert(client, request);
        let deadline = started + DEADLINE_S;
        if over {
            self.finish(client, false);
        } else if self.now + delay >= deadline {
            // A busy round gives up at once; a resend's own loop waits its backoff, and the
            // request's deadline cuts it off.
            match resend {
                Some(_) => self.schedule(deadline, Event::TimedOut(client, false)),
                None => self.finish(client, false),
            }
        } else {
            self.schedule(self.now + delay, Event::Attempt(client));
        }
    }

    fn attempt(&mut self, client: usize, slotted: bool) {
        // This machine's client: one attempt at a time, each taking its CPU time.
        if let Some(machine) = self.machine.filter(|_| !slotted) {
            let sent = self.client_free.max(self.now) + machine.client_cpu_s / machine.client_cores;
            let deadline = self.requests.get(&client).map_or(f64::MAX, |r| r.started + DEADLINE_S);
            // Still waiting for the CPU at its deadline: cut off before it is sent.
            if sent > deadline {
                return self.schedule(deadline.max(self.now), Event::TimedOut(client, false));
            }
            self.client_free = sent;
            return self.schedule(sent, Event::Sent(client));
        }
        let t = self.now;
        let request = self.requests.get(&client).cloned().unwrap_or_default();
        let free: Vec<u32> = (0..self.shards).filter(|k| !request.busy.contains(k)).collect();
        let shard = match request.pinned {
            Some(shard) => shard,
            None if free.is_empty() => self.rng.u32(..self.shards),
            None => free[self.rng.usize(..free.len())],
        };
        if self.held_until[shard as usize] > t {
            if self.counting {
                self.conflicts += 1;
                self.opening_conflicts += u64::from(t < 1.0);
            }
            // One shard, or a resend: the store sends the same transaction again.
            if self.shards == 1 || request.pinned.is_some() {
                return self.retry(client, Some(shard));
            }
            // A first attempt on a sharded item gives way: another shard at once (a new
            // transaction), up to 2, then a new round after a backoff.
            let others = (self.shards - 1).min(MAX_SHARD_HOPS);
            let request = self.requests.get_mut(&client).expect("in flight");
            if request.hops < others {
                request.hops += 1;
                request.attempts = 0;
                request.busy.push(shard);
                // The store goes to the next shard at once, in the same task: its CPU time
                // delays the others, not this attempt.
                if let Some(machine) = self.machine {
                    self.client_free = self.client_free.max(t) + machine.client_cpu_s / machine.client_cores;
                }
                return self.schedule(t, Event::Sent(client));
            }
            return self.retry(client, None);
        }
        // The shard's partition: the shard item and the hold item, 2 units each.
        let rate = self.params.partition_write_units_per_second;
        let (units, since) = self.units[shard as usize];
        let units = (units + rate * (t - since)).min(rate);
        if units < UNITS_IN_SHARD_PARTITION {
            self.units[shard as usize] = (units, t);
            if self.counting {
                self.throttles += 1;
            }
            return self.retry(client, Some(shard));
        }
        self.units[shard as usize] = (units - UNITS_IN_SHARD_PARTITION, t);
        let hold = self.params.hold_time(&mut self.rng).as_secs_f64();
        self.held_until[shard as usize] = t + hold;
        let mut answered = t + hold;
        let deadline = self.requests.get(&client).map_or(f64::MAX, |r| r.started + DEADLINE_S);
        if let Some(machine) = self.machine {
            // One of the model's turns into DynamoDB Local: free when a request holding one is
            // answered or cut off at its deadline (DynamoDB Local goes on with it all the same).
            // Still waiting for one at the deadline, it is never sent.
            let full = self.turns.len() >= machine.emulator_turns.max(1);
            let turn = if full { self.turns.peek().map_or(t, |Reverse(at)| *at as f64 / 1e9) } else { t };
            if turn.max(t) >= deadline {
                self.held_until[shard as usize] = self.held_until[shard as usize].min(deadline);
                return self.schedule(deadline, Event::TimedOut(client, false));
            }
            if full {
                self.turns.pop();
            }
            let served = self.emulator_free.max(turn.max(t)) + 1.0 / machine.emulator_rate;
            self.emulator_free = served;
            self.turns.push(Reverse(at(served.min(deadline))));
            answered = answered.max(served);
        }
        if answered > deadline {
            // Cut off at the deadline: the model frees its items then.
            self.held_until[shard as usize] = self.held_until[shard as usize].min(deadline.max(t));
            self.schedule(deadline, Event::TimedOut(client, true));
        } else {
            self.schedule(answered, Event::Answered(client));
        }
    }
}

/// How a row ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// At its last second, requests in flight left uncounted.
    CutOff,
    /// As section 5's rows end: no request starts after the last second, those in flight go on
    /// to their answer (a success, or 503 at the latest at their deadline), and the rates are
    /// over the whole time.
    Drained,
}

/// What the simulated runs of a row counted.
#[derive(Default)]
struct Counted {
    seconds: f64,
    sent: u64,
    successes: u64,
    conflicts: u64,
    opening_conflicts: u64,
    throttles: u64,
    unavailable: u64,
    unavailable_applied: u64,
    latencies_ms: Vec<f64>,
}

/// One row: `clients` on `shards`, arriving evenly over the first `arrival` seconds, for
/// `seconds` simulated seconds, all of them counted (a sale's opening included, as section 5
/// counts it), ending as `ending` says; run once per seed, the runs summed (rates over their
/// summed time), as section 5 sums its runs of a row.
pub fn simulate(
    params: &ContentionParams,
    clients: usize,
    shards: u32,
    machine: Option<Machine>,
    timing: (f64, f64, Ending),
    seeds: &[u64],
) -> SimCell {
    let mut all = Counted::default();
    for &seed in seeds {
        run_sale(params, clients, shards, machine, timing, seed, &mut all);
    }
    let successes = all.successes.max(1) as f64;
    SimCell {
        clients,
        shards,
        emulator_rate: machine.map(|m| round(m.emulator_rate)),
        client_cpu_ms: machine.map(|m| round(m.client_cpu_s * 1000.0)),
        requests: all.sent,
        seconds: round(all.seconds),
        successes_per_s: round(all.successes as f64 / all.seconds.max(f64::MIN_POSITIVE)),
        conflicts_per_success: round(all.conflicts as f64 / successes),
        opening_conflicts: all.opening_conflicts,
        throttles: all.throttles,
        unavailable: all.unavailable,
        unavailable_applied: all.unavailable_applied,
        unavailable_pct: round(
            100.0 * all.unavailable as f64 / (all.successes + all.unavailable).max(1) as f64,
        ),
        latency: Latency::of(all.latencies_ms),
    }
}

fn run_sale(
    params: &ContentionParams,
    clients: usize,
    shards: u32,
    machine: Option<Machine>,
    (arrival, seconds, ending): (f64, f64, Ending),
    seed: u64,
    into: &mut Counted,
) {
    let rate = params.partition_write_units_per_second;
    let mut sale = Sale {
        params,
        shards: shards.max(1),
        machine,
        rng: fastrand::Rng::with_seed(seed),
        now: 0.0,
        queue: BinaryHeap::new(),
        seq: 0,
        held_until: vec![0.0; shards.max(1) as usize],
        units: vec![(rate, 0.0); shards.max(1) as usize],
        emulator_free: 0.0,
        turns: BinaryHeap::new(),
        client_free: 0.0,
        requests: HashMap::new(),
        counting: true,
        stop_at: (ending == Ending::Drained).then_some(seconds),
        in_flight: 0,
        last_answer: 0.0,
        sent: 0,
        successes: 0,
        conflicts: 0,
        opening_conflicts: 0,
        throttles: 0,
        unavailable: 0,
        unavailable_applied: 0,
        latencies_ms: Vec::new(),
    };
    for client in 0..clients {
        let t = arrival * client as f64 / clients as f64;
        sale.new_request(client, t);
    }
    let end = if ending == Ending::Drained { f64::MAX } else { seconds };
    while let Some(Reverse((time, _, event))) = sale.queue.pop() {
        sale.now = time as f64 / 1e9;
        if sale.now >= end || (sale.stop_at.is_some() && sale.in_flight == 0) {
            break;
        }
        match event {
            Event::Attempt(client) => sale.attempt(client, false),
            Event::Sent(client) => sale.attempt(client, true),
            Event::Answered(client) => sale.finish(client, true),
            Event::TimedOut(client, applied) => {
                sale.unavailable_applied += u64::from(applied && sale.counting);
                sale.finish(client, false)
            }
        }
    }
    into.seconds += if ending == Ending::Drained { sale.last_answer.max(seconds) } else { seconds };
    (into.sent, into.successes, into.conflicts) =
        (into.sent + sale.sent, into.successes + sale.successes, into.conflicts + sale.conflicts);
    into.opening_conflicts += sale.opening_conflicts;
    (into.throttles, into.unavailable) =
        (into.throttles + sale.throttles, into.unavailable + sale.unavailable);
    into.unavailable_applied += sale.unavailable_applied;
    into.latencies_ms.extend(sale.latencies_ms);
}

/// Simulated seconds of the rows on AWS, and over how long their clients arrive.
const AWS_SECONDS: f64 = 5.0;
const AWS_ARRIVAL: f64 = 1.0;

/// Section 6 for `results`: the rows section 5 ran (but its sensitivity rows), each under this
/// machine as that row met it (DynamoDB Local's rate and the client's CPU per attempt as
/// measured there, [`Machine`]), the clients arriving and the row ending as there; then, on AWS,
/// C from 256 to 10,000 on 1, 16, 32 and 64 shards, arriving over the first second. Printed as it
/// goes; `None` without section 5.
pub fn run_for(results: &crate::Results) -> Option<SimRun> {
    let model = results.model.as_ref()?;
    let params = ContentionParams::default();
    let rows: Vec<&crate::hot_model::ModelCell> =
        model.cells.iter().filter(|c| c.hold_p50_ms.is_none() && c.clients > 1).collect();
    let mut cells = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        // On shards DynamoDB Local is what limits the row: the rate it applied there. On one
        // shard the shard's hold time limits it, so the row's rate says nothing of DynamoDB
        // Local's: the most it applied in a row at the same C.
        let rate = if row.shards > 1 {
            row.applied_per_s()
        } else {
            rows.iter().filter(|r| r.clients == row.clients).map(|r| r.applied_per_s()).fold(0.0, f64::max)
        };
        let machine = Machine {
            emulator_rate: rate.max(1.0),
            emulator_turns: params.emulator_concurrency.max(1),
            client_cpu_s: row.client_cpu_ms_per_attempt / 1000.0,
            client_cores: results.machine.cores.max(1) as f64,
        };
        let timing = (model.arrival_seconds, model.seconds_per_cell, Ending::Drained);
        // As many runs as section 5 summed for the row.
        let seeds: Vec<u64> = (0..u64::from(row.reps.max(1))).map(|r| 1000 + 100 * r + i as u64).collect();
        cells.push(simulate(&params, row.clients, row.shards, Some(machine), timing, &seeds));
    }
    for (i, clients) in [256, 1024, 2500, 5000, 10_000].into_iter().enumerate() {
        for shards in [1, 16, 32, 64] {
            let seed = 2000 + i as u64 * 100 + u64::from(shards);
            let timing = (AWS_ARRIVAL, AWS_SECONDS, Ending::CutOff);
            cells.push(simulate(&params, clients, shards, None, timing, &[seed]));
        }
    }
    for c in &cells {
        println!(
            "simulated C={} shards={} {}: {}/s, conflicts/ok {} ({} in the first second), throttled {}, 503 {}%, p50 {} ms, p99 {} ms",
            c.clients,
            c.shards,
            c.emulator_rate.map_or("on AWS".to_owned(), |r| format!("as section 5 ran it ({r}/s)")),
            c.successes_per_s,
            c.conflicts_per_success,
            c.opening_conflicts,
            c.throttles,
            c.unavailable_pct,
            c.latency.p50_ms,
            c.latency.p99_ms
        );
    }
    Some(SimRun { model: params.to_string(), simulated_seconds: AWS_SECONDS, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_takes_about_one_transaction_per_mean_hold_time_and_shards_add_their_own() {
        let params = ContentionParams::default();
        let (mu, sigma) = params.hold_distribution();
        let per_shard = 1.0 / (mu + sigma * sigma / 2.0).exp();
        let one = simulate(&params, 64, 1, None, (0.1, 4.0, Ending::CutOff), &[1]);
        assert!((one.successes_per_s - per_shard).abs() < 0.15 * per_shard, "{one:?} vs {per_shard}/s");
        assert!(one.conflicts_per_success > 1.0, "{one:?}");
        let sixteen = simulate(&params, 64, 16, None, (0.1, 4.0, Ending::CutOff), &[1]);
        assert!(sixteen.successes_per_s > 8.0 * one.successes_per_s, "{sixteen:?}");
        assert!(sixteen.conflicts_per_success < one.conflicts_per_success, "{sixteen:?}");
        // DynamoDB Local's rate caps what gets through, whatever the shards.
        let capped = simulate(
            &params,
            64,
            16,
            Some(Machine {
                emulator_rate: 150.0,
                emulator_turns: 8,
                client_cpu_s: 0.0005,
                client_cores: 2.0,
            }),
            (0.0, 4.0, Ending::Drained),
            &[1],
        );
        assert!(capped.successes_per_s <= 151.0, "{capped:?}");
        // A partition's write units cap a shard: 1,000 a second at 4 a reserve, after a second's
        // worth at the start (the bucket starts full): (1,000 + 4 x 1,000) / 4 / 4 s.
        let fast = ContentionParams {
            hold_p50: std::time::Duration::from_micros(100),
            hold_p99: std::time::Duration::from_micros(100),
            ..params
        };
        let throttled = simulate(&fast, 64, 1, None, (0.1, 4.0, Ending::CutOff), &[1]);
        assert!((throttled.successes_per_s - 312.5).abs() < 10.0 && throttled.throttles > 0, "{throttled:?}");
    }

    #[test]
    fn a_transaction_still_waiting_for_its_turn_at_the_deadline_is_never_sent() {
        // One turn into an emulator answering one transaction a second; 100 buyers at once. The
        // first 5 get the turn in turn and are answered by their deadline (5 s); the other 95
        // are still waiting for it then: 503, never sent, never applied, and the emulator's time
        // goes to the next requests.
        let params = ContentionParams::default();
        let machine = Machine { emulator_rate: 1.0, emulator_turns: 1, client_cpu_s: 0.0, client_cores: 2.0 };
        let cell = simulate(&params, 100, 64, Some(machine), (0.0, 8.0, Ending::Drained), &[1]);
        let successes = (cell.successes_per_s * cell.seconds).round() as u64;
        assert!(successes >= 8 && successes as f64 <= cell.seconds + 1.0, "{cell:?}");
        assert!(cell.unavailable >= 95, "{cell:?}");
        assert!(cell.unavailable_applied <= 2, "{cell:?}");
        // Drained: no request starts after 8 s, and the last ones end by their deadline.
        assert!(cell.latency.max_ms <= DEADLINE_S * 1000.0 + 1.0, "{cell:?}");
    }
}
