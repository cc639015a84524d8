//! Invitations: 16 peers (or `--nodes`, at least 6) in a star around two hubs. n0 creates
//! the space; every other peer joins it only through an invitation, over the invitation's
//! QUIC side stream, under the run's latency and packet loss:
//!
//! 1. n0 invites n1 as ADMIN with `key` auth; an impostor (another identity) tries the same
//!    code at the same time and must be refused. n1 is the second host from then on.
//! 2. A multi-use `pin` invitation from n0 that three or four guests try with wrong codes
//!    while others give the right one, all at once: 3 wrong codes in all end it, whoever
//!    sent them; the right ones that come too late are refused.
//! 3. A multi-use `pin` invitation on the second host: one wrong code, then the host
//!    crashes in the middle of guests' handshakes and restarts on its store (the
//!    invitation, its count of wrong codes and the admissions persist), then another wrong
//!    code must be told one attempt is left.
//! 4. A single-use `pin` invitation and a guest cut off from everyone: it times out as
//!    "host unreachable"; then it is cut off again during its next handshake, the network
//!    heals, and it must get in; a second guest comes too late for the single use.
//! 5. A multi-use invitation without auth that the host cancels while guests are in their
//!    handshakes; a guest that starts after the cancel is told CANCELLED.
//! 6. A single-use READER invitation without auth that lives a few seconds: guests race for
//!    it, and one that starts after its expiry is told EXPIRED.
//! 7. Loss off: every peer still outside gets in through a last multi-use invitation (a
//!    right code on a calm network must succeed), everyone writes, then the liveness phase.
//!
//! Checked (`checkers/invitations.rs`): every accept ends in one terminal state within its
//! bound; at most 3 wrong codes per invitation and no success after the third; a SUCCESS is
//! a member on the host with the invitation's role (read after the liveness phase), whose
//! first write, made right after the SUCCESS, was accepted (editor, admin) or refused with
//! 403 (reader) and reached the host; no success for the wrong proof, after a cancel or an
//! expiry, or twice for a single-use invitation. The shared liveness phase then requires
//! every admitted guest to converge, with the same verdicts, with the hosts.

use std::collections::{BTreeMap, BTreeSet};

use echo_actors::credentials::Role;
use echo_actors::invitation::{AuthMethod, InviteOptions};
use echo_actors::node::QueryRequest;

use super::{cluster, Outcome, RunOptions, LIVENESS_BOUND_MS};
use crate::checkers::invitations::{self, InvitationLog};
use crate::harness::invitations::{Invite, PendingAccept, Proof};
use crate::harness::{Cluster, Topology};

/// The handshake timeout of most invitations and accepts.
const HANDSHAKE_MS: u64 = 15_000;
/// The accept of a guest that is cut off from every host.
const CUT_OFF_MS: u64 = 4_000;
/// The last accepts, on a calm network. A guest that was a stranger to the host before (its
/// static-peer dials, an earlier failed handshake) finds its address penalized there: its
/// connections are refused for up to `PENALTY_MAX` (30 s, `mesh/slots.rs`), and a refused
/// dial costs the guest `AWAIT_DEVICE` (12 s, `mesh/network_invitations.rs`) before it
/// retries. A right code must get in within this.
const LAST_ACCEPT_MS: u64 = 60_000;

struct Story {
    log: InvitationLog,
    /// Peers not admitted yet, in index order.
    outside: BTreeSet<usize>,
    /// The peers that host invitations (n0, and n1 once it is an admin).
    hosts: Vec<usize>,
    labels: usize,
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let nodes = opts.nodes.unwrap_or(16).max(6);
    let opts = RunOptions {
        nodes: Some(nodes),
        ..opts.clone()
    };
    let mut c = cluster("invitation", seed, &opts, nodes, Topology::Hubs(2));
    for n in 0..c.nodes.len() {
        if !c.create_identity(n) {
            return c.finish();
        }
    }
    if !c.create_space(0) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let mut s = Story {
        log: InvitationLog::default(),
        outside: (1..c.nodes.len()).collect(),
        hosts: vec![0],
        labels: 0,
    };
    s.co_host(&mut c);
    let rate = f64::from(10 + c.faults.loss_per_mille) / 1000.0;
    c.set_loss(rate);
    s.strikes(&mut c);
    s.host_crash(&mut c);
    s.cut_off(&mut c);
    s.cancel(&mut c);
    s.expiry(&mut c);
    c.heal_network();
    s.everyone_in(&mut c);
    for _ in 0..2 {
        for n in c.live_members() {
            if c.below(2) == 0 {
                c.random_write(n, &objects, &texts);
            }
        }
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    s.check(&mut c);
    c.finish()
}

impl Story {
    fn label(&mut self) -> String {
        let l = format!("I{}", self.labels);
        self.labels += 1;
        l
    }

    /// Up to `k` peers still outside, drawn by the scenario RNG (distinct).
    fn draw(&self, c: &mut Cluster, k: usize) -> Vec<usize> {
        let mut pool: Vec<usize> = self.outside.iter().copied().filter(|&n| n > 1).collect();
        let mut out = Vec::new();
        while out.len() < k && !pool.is_empty() {
            let i = c.below(pool.len() as u64) as usize;
            out.push(pool.remove(i));
        }
        out
    }

    fn options(auth: AuthMethod, role: Role, multi_use: bool) -> InviteOptions {
        InviteOptions {
            role,
            auth,
            guest_key: None,
            multi_use,
            handshake_timeout_ms: HANDSHAKE_MS,
            lifetime_ms: 3_600_000,
        }
    }

    fn invite(&mut self, c: &mut Cluster, host: usize, options: InviteOptions) -> Option<Invite> {
        let label = self.label();
        c.invite(&mut self.log, host, &label, options)
    }

    /// Starts the accepts in `plan` (guest, proof), `stagger` ms apart at most.
    fn start(
        &mut self,
        c: &mut Cluster,
        invite: &Invite,
        plan: &[(usize, Proof)],
        stagger: u64,
        timeout_ms: u64,
    ) -> Vec<PendingAccept> {
        let mut out = Vec::new();
        for &(guest, proof) in plan {
            out.push(c.start_accept(guest, invite, proof, timeout_ms));
            let pause = c.below(stagger + 1);
            c.run_for(pause);
        }
        out
    }

    /// Collects accepts; every guest that succeeded is a member from now on.
    fn finish(&mut self, c: &mut Cluster, pending: Vec<PendingAccept>, guests: &[usize]) {
        let ok = c.finish_accepts(&mut self.log, pending);
        for (&g, ok) in guests.iter().zip(ok) {
            if ok {
                self.outside.remove(&g);
                c.nodes[g].member = true;
            }
        }
    }

    /// 1. n1 is invited as ADMIN with `key` auth; an impostor tries the same code.
    fn co_host(&mut self, c: &mut Cluster) {
        let mut options = Self::options(AuthMethod::Key, Role::Admin, false);
        options.guest_key = c.nodes[1].identity.clone();
        let Some(invite) = self.invite(c, 0, options) else {
            return;
        };
        let impostor = self.draw(c, 1);
        let mut plan: Vec<(usize, Proof)> = impostor.iter().map(|&g| (g, Proof::Right)).collect();
        plan.insert(c.below(2) as usize % (plan.len() + 1), (1, Proof::Right));
        let guests: Vec<usize> = plan.iter().map(|(g, _)| *g).collect();
        let pending = self.start(c, &invite, &plan, 200, HANDSHAKE_MS);
        self.finish(c, pending, &guests);
        if c.nodes[1].member {
            self.hosts.push(1);
        } else {
            c.event("n1 is not an admin: n0 hosts every invitation");
        }
    }

    /// 2. Wrong codes from several guests at once against one multi-use invitation.
    fn strikes(&mut self, c: &mut Cluster) {
        let options = Self::options(AuthMethod::Pin, Role::Editor, true);
        let Some(invite) = self.invite(c, 0, options) else {
            return;
        };
        let wrong = 3 + c.below(2) as usize;
        let right = 2 + c.below(2) as usize;
        let guests = self.draw(c, wrong + right);
        let plan: Vec<(usize, Proof)> = guests
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                (
                    g,
                    if i < wrong {
                        Proof::WrongPin
                    } else {
                        Proof::Right
                    },
                )
            })
            .collect();
        let mut plan = plan;
        // Interleave right and wrong codes in a seeded order.
        for i in (1..plan.len()).rev() {
            let j = c.below(i as u64 + 1) as usize;
            plan.swap(i, j);
        }
        let guests: Vec<usize> = plan.iter().map(|(g, _)| *g).collect();
        let pending = self.start(c, &invite, &plan, 300, HANDSHAKE_MS);
        self.finish(c, pending, &guests);
    }

    /// 3. The host crashes during handshakes and restarts on its store.
    fn host_crash(&mut self, c: &mut Cluster) {
        let host = *self.hosts.last().unwrap_or(&0);
        let role = if c.below(3) == 0 {
            Role::Reader
        } else {
            Role::Editor
        };
        let options = Self::options(AuthMethod::Pin, role, true);
        let Some(invite) = self.invite(c, host, options) else {
            return;
        };
        let guests = self.draw(c, 4);
        let [w1, w2, rest @ ..] = &guests[..] else {
            return;
        };
        let pending = self.start(c, &invite, &[(*w1, Proof::WrongPin)], 0, HANDSHAKE_MS);
        self.finish(c, pending, &[*w1]);
        let plan: Vec<(usize, Proof)> = rest.iter().map(|&g| (g, Proof::Right)).collect();
        let pending = self.start(c, &invite, &plan, 200, HANDSHAKE_MS);
        let pause = c.below(1_500);
        c.run_for(pause);
        c.crash(host);
        let down = 1_000 + c.below(4_000);
        c.run_for(down);
        c.restart(host);
        self.finish(c, pending, rest);
        let pending = self.start(c, &invite, &[(*w2, Proof::WrongPin)], 0, HANDSHAKE_MS);
        self.finish(c, pending, &[*w2]);
    }

    /// 4. A guest cut off from everyone times out; cut off again mid-handshake, it gets in
    ///    once the network heals; a second guest is too late for the single use.
    fn cut_off(&mut self, c: &mut Cluster) {
        let options = Self::options(AuthMethod::Pin, Role::Editor, false);
        let Some(invite) = self.invite(c, 0, options) else {
            return;
        };
        let guests = self.draw(c, 2);
        let Some(&g) = guests.first() else {
            return;
        };
        c.isolate(g);
        let pending = self.start(c, &invite, &[(g, Proof::Right)], 0, CUT_OFF_MS);
        self.finish(c, pending, &[g]);
        c.heal_network();
        let rate = f64::from(10 + c.faults.loss_per_mille) / 1000.0;
        c.set_loss(rate);
        let pending = self.start(c, &invite, &[(g, Proof::Right)], 0, HANDSHAKE_MS);
        let pause = c.below(400);
        c.run_for(pause);
        c.isolate(g);
        let cut = 1_000 + c.below(3_000);
        c.run_for(cut);
        c.heal_network();
        c.set_loss(rate);
        self.finish(c, pending, &[g]);
        if let Some(&late) = guests.get(1) {
            let pending = self.start(c, &invite, &[(late, Proof::Right)], 0, HANDSHAKE_MS);
            self.finish(c, pending, &[late]);
        }
    }

    /// 5. The host cancels while guests are in their handshakes.
    fn cancel(&mut self, c: &mut Cluster) {
        let options = Self::options(AuthMethod::None, Role::Editor, true);
        let host = self.hosts[c.below(self.hosts.len() as u64) as usize];
        let Some(invite) = self.invite(c, host, options) else {
            return;
        };
        let guests = self.draw(c, 4);
        let Some((&after, before)) = guests.split_last() else {
            return;
        };
        let plan: Vec<(usize, Proof)> = before.iter().map(|&g| (g, Proof::Right)).collect();
        let pending = self.start(c, &invite, &plan, 300, HANDSHAKE_MS);
        let pause = c.below(800);
        c.run_for(pause);
        c.cancel_invitation(&mut self.log, &invite);
        self.finish(c, pending, before);
        let pending = self.start(c, &invite, &[(after, Proof::Right)], 0, HANDSHAKE_MS);
        self.finish(c, pending, &[after]);
    }

    /// 6. A short-lived single-use READER invitation: a race, then an accept after expiry.
    fn expiry(&mut self, c: &mut Cluster) {
        let host = self.hosts[c.below(self.hosts.len() as u64) as usize];
        let mut options = Self::options(AuthMethod::None, Role::Reader, false);
        options.lifetime_ms = 3_000 + c.below(3_000);
        let lifetime = options.lifetime_ms;
        let created = c.now();
        let Some(invite) = self.invite(c, host, options) else {
            return;
        };
        let guests = self.draw(c, 3);
        let Some((&after, racers)) = guests.split_last() else {
            return;
        };
        let plan: Vec<(usize, Proof)> = racers.iter().map(|&g| (g, Proof::Right)).collect();
        let pending = self.start(c, &invite, &plan, 100, HANDSHAKE_MS);
        self.finish(c, pending, racers);
        let left = (created + lifetime + 200).saturating_sub(c.now());
        c.run_for(left);
        let pending = self.start(c, &invite, &[(after, Proof::Right)], 0, HANDSHAKE_MS);
        self.finish(c, pending, &[after]);
    }

    /// 7. On a calm network every peer still outside gets in with the right code (within
    ///    [`LAST_ACCEPT_MS`]).
    fn everyone_in(&mut self, c: &mut Cluster) {
        c.restart_due();
        for &h in &self.hosts.clone() {
            if !c.nodes[h].up {
                c.restart(h);
            }
        }
        let guests: Vec<usize> = self.outside.iter().copied().collect();
        if guests.is_empty() {
            return;
        }
        let mut options = Self::options(AuthMethod::Pin, Role::Editor, true);
        options.handshake_timeout_ms = LAST_ACCEPT_MS;
        let Some(invite) = self.invite(c, 0, options) else {
            c.violation("liveness", "the last invitation could not be created");
            return;
        };
        let plan: Vec<(usize, Proof)> = guests.iter().map(|&g| (g, Proof::Right)).collect();
        let pending = self.start(c, &invite, &plan, 50, LAST_ACCEPT_MS);
        self.finish(c, pending, &guests);
        for g in guests {
            if self.outside.contains(&g) {
                let detail = format!(
                    "{} gave the right code to a live invitation on a calm network and did \
                     not get in",
                    c.nodes[g].name
                );
                c.violation("liveness", detail);
            }
        }
    }

    /// After the liveness phase: the hosts' records, members and objects against the log.
    fn check(&mut self, c: &mut Cluster) {
        let hosts = self.hosts.clone();
        let records = c.host_records(&hosts);
        let mut members = BTreeMap::new();
        let mut on_host = BTreeMap::new();
        for &h in &hosts {
            let name = c.nodes[h].name.clone();
            if let Some(m) = c.members_of(h) {
                members.insert(name.clone(), m);
            }
            let space = c.space.clone().unwrap_or_default();
            let objects = c.call(h, move |handle| async move {
                let query = QueryRequest {
                    include_deleted: true,
                    ..Default::default()
                };
                handle.query(&space, query).await
            });
            let ids: BTreeSet<String> = objects
                .and_then(Result::ok)
                .unwrap_or_default()
                .iter()
                .filter_map(|o| o.get("@id").and_then(|v| v.as_str()).map(str::to_string))
                .collect();
            on_host.insert(name, ids);
        }
        let found = invitations::check_all(&self.log, &records, &members, &on_host);
        let successes = self
            .log
            .accepts
            .iter()
            .filter(|a| a.answer.as_ref().is_some_and(|x| x.succeeded()))
            .count();
        c.event(format!(
            "invitations: {} created, {} accepts, {} successes, {} violations",
            self.log.invitations.len(),
            self.log.accepts.len(),
            successes,
            found.len()
        ));
        for v in found {
            c.violation(v.checker, v.detail);
        }
    }
}
