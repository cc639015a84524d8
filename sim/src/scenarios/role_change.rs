//! Role changes concurrent with writes: 4-6 peers (by seed, or `--nodes`) share a space, a
//! few of them admins. In each round a member W reaches the others only through a relay R,
//! and the issuer I (the owner or an admin) is cut off from both. W writes, I changes W's
//! role at the same time (demotion to reader, demotion of an admin, removal, or promotion
//! to admin), and an admin W may concurrently change a third member's role. R holds every
//! block of W before it hears of the change; then R reconnects with I (W still behind R),
//! R or I may crash and restart on what it stored, and the network heals. In a promotion
//! round a reader W is promoted while cut off: its writes are refused until it has seen the
//! promotion, and then it must become writable. A removed W may instead be switched
//! off (crash) once R holds its blocks, and come back only after the others heard of its
//! removal: nobody opens a channel to it then, so it must be told when it asks.
//!
//! Roles of members change through `NodeHandle::space_set_role` and
//! `space_remove_member`, as the CLI's `space set-role` / `remove-member` do (the first
//! admins are made either that way or by `space_add_member` with a role).
//!
//! Checked on top of the shared liveness phase (which requires equal objects and equal
//! verdicts: blocks, denied blocks, members and roles): a role set by the owner is the
//! agreed role afterwards; a change that an admin issued concurrently with its own demotion
//! by the owner is void; a writer never writes while its own view says it may not; a
//! removed member applies its own removal within a bound of the heal, and is then refused
//! (403) on every later write; and at the end every reader's write is refused.

use std::collections::BTreeMap;

use echo_actors::credentials::Role;
use echo_actors::node::ErrorKind;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::{Cluster, Topology};

/// How long the relay may take to hold every block of the writer (their link is up).
const RELAY_BOUND_MS: u64 = 30_000;
/// How long members may take to agree on members and roles after a round heals.
const SETTLE_BOUND_MS: u64 = 20_000;
/// How long a removed member may take to apply its own removal once the network heals.
const REMOVAL_SEEN_BOUND_MS: u64 = 10_000;

const ROLES: [Role; 5] = [
    Role::Owner,
    Role::Admin,
    Role::Editor,
    Role::Reader,
    Role::Removed,
];

fn parse_role(s: &str) -> Option<Role> {
    ROLES.into_iter().find(|r| r.as_str() == s)
}

/// The run's shared objects and the agreed roles (node index -> role) after the last round.
struct Story {
    objects: Vec<String>,
    texts: Vec<String>,
    roles: BTreeMap<usize, Role>,
}

/// One round's cast: the member whose role changes, its only relay, and the issuer.
struct Cast {
    writer: usize,
    relay: usize,
    issuer: usize,
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let default_nodes = 4 + (seed % 3) as usize;
    let mut c = cluster("role-change", seed, opts, default_nodes, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let mut s = Story {
        objects,
        texts,
        roles: BTreeMap::new(),
    };
    let admins = c.below(3);
    for _ in 0..admins {
        let editors: Vec<usize> = all[1..].to_vec();
        if let Some(n) = c.pick(&editors) {
            // Both ways users promote a member: `add-member` with a role, `set-role`.
            if c.below(2) == 0 {
                c.set_role(0, n, Role::Admin);
            } else {
                c.change_role(0, n, Role::Admin);
            }
        }
    }
    s.settle(&mut c);
    let rounds = 2 + c.below(2);
    for round in 0..rounds {
        let writers = s.with(&c, |r| matches!(r, Role::Admin | Role::Editor));
        let readers = s.with(&c, |r| r == Role::Reader);
        let promote = !readers.is_empty() && (writers.is_empty() || c.below(3) == 0);
        let Some(cast) = s.cast(&mut c, if promote { &readers } else { &writers }) else {
            c.event(format!("round {round}: too few members left for a round"));
            break;
        };
        c.event(format!(
            "round {round}: {} reaches the others only through {}; {} is cut off from both",
            c.nodes[cast.writer].name, c.nodes[cast.relay].name, c.nodes[cast.issuer].name
        ));
        if promote {
            s.promotion(&mut c, &cast);
        } else {
            s.concurrent_change(&mut c, &cast);
        }
    }
    c.liveness(LIVENESS_BOUND_MS, &s.texts);
    s.readers_are_refused(&mut c);
    c.finish()
}

impl Story {
    /// Live members (not the owner) whose agreed role satisfies `want`.
    fn with(&self, c: &Cluster, want: impl Fn(Role) -> bool) -> Vec<usize> {
        c.live_members()
            .into_iter()
            .filter(|n| *n != 0 && self.roles.get(n).is_some_and(|r| want(*r)))
            .collect()
    }

    /// Picks the issuer (the owner or an admin), then the relay; cuts the writer off from
    /// everyone but the relay, and the issuer's side off from the relay's.
    fn cast(&mut self, c: &mut Cluster, candidates: &[usize]) -> Option<Cast> {
        let writer = c.pick(candidates)?;
        let mut issuers = vec![0];
        issuers.extend(self.with(c, |r| r == Role::Admin));
        issuers.retain(|&n| n != writer);
        let issuer = c.pick(&issuers)?;
        let relays: Vec<usize> = c
            .live_members()
            .into_iter()
            .filter(|&n| n != writer && n != issuer)
            .collect();
        let relay = c.pick(&relays)?;
        let (mut side_i, mut side_r) = (vec![issuer], vec![relay]);
        for n in 0..c.nodes.len() {
            if ![writer, relay, issuer].contains(&n) {
                if c.below(2) == 0 {
                    side_i.push(n);
                } else {
                    side_r.push(n);
                }
            }
        }
        let mut relay_side = side_r.clone();
        relay_side.push(writer);
        c.partition(&side_i, &relay_side);
        if side_r.len() > 1 {
            c.partition(&[writer], &side_r[1..]);
        }
        Some(Cast {
            writer,
            relay,
            issuer,
        })
    }

    /// A random write by a live member that may edit, other than `not`.
    fn bystander_write(&mut self, c: &mut Cluster, not: usize) {
        let mut editors = self.with(c, Role::can_edit);
        editors.push(0);
        editors.retain(|&n| n != not && c.nodes[n].up);
        if let Some(n) = c.pick(&editors) {
            c.random_write(n, &self.objects, &self.texts);
        }
    }

    /// W writes; I changes W's role meanwhile; an admin W may change a third member's role.
    fn concurrent_change(&mut self, c: &mut Cluster, cast: &Cast) {
        let Cast {
            writer,
            relay,
            issuer,
        } = *cast;
        let old = self.roles.get(&writer).copied().unwrap_or(Role::Editor);
        let members = c.live_members().len();
        let mut choices = vec![Role::Reader, Role::Reader];
        choices.push(if old == Role::Admin {
            Role::Editor
        } else {
            Role::Admin
        });
        if members >= 4 {
            choices.push(Role::Removed);
        }
        let new = choices[c.below(choices.len() as u64) as usize];
        for _ in 0..1 + c.below(3) {
            c.random_write(writer, &self.objects, &self.texts);
            if c.below(2) == 0 {
                self.bystander_write(c, writer);
            }
            let pause = c.below(400);
            c.run_for(pause);
        }
        c.change_role(issuer, writer, new);
        let mut counter = None;
        if old == Role::Admin && c.below(3) > 0 {
            let targets: Vec<usize> = c
                .live_members()
                .into_iter()
                .filter(|&n| n != 0 && n != writer)
                .collect();
            if let Some(target) = c.pick(&targets) {
                let was = self.roles.get(&target).copied().unwrap_or(Role::Editor);
                let options: Vec<Role> = [Role::Admin, Role::Editor, Role::Reader]
                    .into_iter()
                    .filter(|r| *r != was)
                    .collect();
                let role = options[c.below(options.len() as u64) as usize];
                if c.change_role(writer, target, role) {
                    counter = Some((target, was));
                }
            }
        }
        for _ in 0..c.below(3) {
            c.random_write(writer, &self.objects, &self.texts);
            self.bystander_write(c, writer);
        }
        self.relayed(c, writer, relay);
        // A member removed while it is switched off (a laptop shut for the night): when it
        // comes back, with no connection left, every peer knows of the removal and none
        // opens a channel to it, so it must be told when it says Hello.
        let offline = new == Role::Removed && c.below(2) == 0;
        if offline {
            c.event(format!(
                "{} is switched off before anyone hears of its removal",
                c.nodes[writer].name
            ));
            c.crash(writer);
        }
        self.reconnect(c, cast, offline);
        if offline {
            c.restart(writer);
        }
        let mutual = counter.is_some_and(|(t, _)| t == issuer);
        if !mutual {
            self.writes_as_seen(c, writer, new != Role::Removed);
        }
        self.settle(c);
        if self.roles.get(&writer) == Some(&Role::Removed) {
            self.removed_is_refused(c, writer);
        }
        if issuer != 0 {
            return;
        }
        let agreed = self.roles.get(&writer).copied();
        if agreed != Some(new) {
            let detail = format!(
                "the owner set {} to {new}, but the agreed role is {agreed:?}",
                c.nodes[writer].name
            );
            c.violation("verdicts", detail);
        }
        if let Some((target, was)) = counter.filter(|_| new != Role::Admin) {
            let agreed = self.roles.get(&target).copied();
            if agreed != Some(was) {
                let detail = format!(
                    "{} changed {}'s role concurrently with its own change to {new} by the \
                     owner, so that change is void; {} should still be {was}, agreed {agreed:?}",
                    c.nodes[writer].name, c.nodes[target].name, c.nodes[target].name
                );
                c.violation("verdicts", detail);
            }
        }
    }

    /// A reader W is promoted while it reaches only R: its writes are refused until it has
    /// seen the promotion, and then it becomes writable.
    fn promotion(&mut self, c: &mut Cluster, cast: &Cast) {
        let Cast { writer, issuer, .. } = *cast;
        let new = if c.below(3) == 0 {
            Role::Admin
        } else {
            Role::Editor
        };
        self.refused_while_cut_off(c, writer, "before its promotion");
        c.change_role(issuer, writer, new);
        for _ in 0..1 + c.below(3) {
            self.bystander_write(c, writer);
        }
        self.refused_while_cut_off(c, writer, "while cut off from its promotion");
        self.reconnect(c, cast, false);
        if !c.wait_writable(writer, ADMIT_BOUND_MS) {
            let detail = format!(
                "{} never became writable after its promotion to {new}",
                c.nodes[writer].name
            );
            c.violation("liveness", detail);
        }
        self.settle(c);
        let agreed = self.roles.get(&writer).copied();
        if issuer == 0 && agreed != Some(new) {
            let detail = format!(
                "the owner promoted {} to {new}, but the agreed role is {agreed:?}",
                c.nodes[writer].name
            );
            c.violation("verdicts", detail);
        }
    }

    /// A write by `node`, which cannot have seen a promotion: it must be refused (403).
    fn refused_while_cut_off(&mut self, c: &mut Cluster, node: usize, when: &str) {
        if let Ok(id) = c.probe_add(node) {
            let detail = format!("reader {} wrote {id} {when}", c.nodes[node].name);
            c.violation("authorization", detail);
        }
    }

    /// Waits until `relay` holds every block `writer` holds (the relay saw the writes first).
    fn relayed(&mut self, c: &mut Cluster, writer: usize, relay: usize) {
        let until = c.now() + RELAY_BOUND_MS;
        loop {
            let v = c.verdicts(&[writer, relay]);
            if let [Some(w), Some(r)] = &v[..] {
                if w.heads.iter().all(|(f, n)| r.heads.get(f) >= Some(n)) {
                    let (wn, rn) = (&c.nodes[writer].name, &c.nodes[relay].name);
                    c.event(format!("{rn} holds every block of {wn}"));
                    return;
                }
            }
            if c.now() >= until {
                let detail = format!(
                    "{} never received {}'s blocks within {RELAY_BOUND_MS} ms though their link was up",
                    c.nodes[relay].name, c.nodes[writer].name
                );
                c.violation("liveness", detail);
                return;
            }
            c.run_for(250);
        }
    }

    /// The relay (maybe after a crash) reconnects with the issuer's side while the writer
    /// still reaches only the relay (or nobody, when `offline`); the issuer may crash and
    /// restart on what it judged.
    fn reconnect(&mut self, c: &mut Cluster, cast: &Cast, offline: bool) {
        if offline {
            c.isolate(cast.writer);
        }
        if c.below(3) == 0 {
            c.crash(cast.relay);
            let pause = c.below(3_000);
            c.run_for(pause);
            c.restart(cast.relay);
        }
        c.heal_network();
        let others: Vec<usize> = (0..c.nodes.len())
            .filter(|&n| n != cast.writer && n != cast.relay)
            .collect();
        if offline {
            c.isolate(cast.writer);
        } else {
            c.partition(&[cast.writer], &others);
        }
        let pause = 2_000 + c.below(4_000);
        c.run_for(pause);
        if c.below(4) == 0 {
            c.crash(cast.issuer);
            let pause = c.below(3_000);
            c.run_for(pause);
            c.restart(cast.issuer);
        }
        for _ in 0..c.below(3) {
            self.bystander_write(c, cast.writer);
        }
    }

    /// `node` tries to write once; if its own view of its role does not allow writing, the
    /// write must be refused with 403. A member being removed writes only once it knows
    /// (its blocks would reach nobody).
    fn writes_as_seen(&mut self, c: &mut Cluster, node: usize, may_write: bool) {
        let identity = c.nodes[node].identity.clone().unwrap_or_default();
        let own = c.verdicts(&[node]).pop().flatten();
        let role = own.and_then(|v| v.members.get(&identity).and_then(|r| parse_role(r)));
        let name = c.nodes[node].name.clone();
        c.event(format!("{name} sees itself as {role:?}"));
        if !may_write && role.is_none_or(Role::can_edit) {
            return;
        }
        match (role, c.probe_add(node)) {
            (Some(r), Ok(id)) if !r.can_edit() => {
                c.violation("authorization", format!("{name} wrote {id} as {r}"));
            }
            (Some(r), Err(kind)) if !r.can_edit() && kind != Some(ErrorKind::Forbidden) => {
                let detail = format!("{name}'s write as {r} failed with {kind:?}, not 403");
                c.violation("authorization", detail);
            }
            _ => {}
        }
    }

    /// A removed member learns of its removal within the bound (from a channel's leave
    /// grace, or, once no member opens to it, from the leaving channel its next Hello gets),
    /// and from then on is refused (403) when it writes.
    fn removed_is_refused(&mut self, c: &mut Cluster, node: usize) {
        let identity = c.nodes[node].identity.clone().unwrap_or_default();
        let name = c.nodes[node].name.clone();
        let until = c.now() + REMOVAL_SEEN_BOUND_MS;
        loop {
            if !c.nodes[node].up {
                return;
            }
            let own = c.verdicts(&[node]).pop().flatten();
            let role = own.and_then(|v| v.members.get(&identity).and_then(|r| parse_role(r)));
            if role == Some(Role::Removed) {
                break;
            }
            if c.now() >= until {
                c.violation(
                    "removal",
                    format!(
                        "{name} has not applied its removal within {REMOVAL_SEEN_BOUND_MS} ms \
                         of the heal (it sees itself as {role:?})"
                    ),
                );
                return;
            }
            c.run_for(250);
        }
        c.event(format!("{name} has applied its removal"));
        for _ in 0..1 + c.below(2) {
            match c.probe_add(node) {
                Ok(id) => {
                    let detail = format!("{name} wrote {id} after it applied its own removal");
                    c.violation("authorization", detail);
                }
                Err(Some(ErrorKind::Forbidden)) => {}
                Err(kind) => {
                    let detail =
                        format!("{name}'s write after its removal failed with {kind:?}, not 403");
                    c.violation("authorization", detail);
                }
            }
            let pause = c.below(500);
            c.run_for(pause);
        }
        // Whatever channel told it has ended by now (its grace is 2 s); nobody serves it
        // since, though it keeps asking.
        c.run_for(3_000);
        let device = c.call(node, |h| async move {
            h.status().await.ok().map(|s| s.device_key)
        });
        if let Some(Some(device)) = device {
            let others: Vec<usize> = c
                .live_members()
                .into_iter()
                .filter(|&m| m != node)
                .collect();
            c.check_shut_out("removal", &others, &device, &format!("the removed {name}"));
        }
    }

    /// Heals everything and waits until every live member that is not removed shows the
    /// owner's members and roles; then takes them as the agreed roles. Removed members stop
    /// counting as members.
    fn settle(&mut self, c: &mut Cluster) {
        c.heal_network();
        c.restart_due();
        let until = c.now() + SETTLE_BOUND_MS;
        let mut owner_view = BTreeMap::new();
        loop {
            c.run_for(500);
            let members = c.live_members();
            let views = c.verdicts(&members);
            let mut agree = false;
            if let Some(Some(owner)) = views.first() {
                owner_view = owner.members.clone();
                agree = members.iter().zip(&views).all(|(n, v)| {
                    let removed = c.nodes[*n]
                        .identity
                        .as_ref()
                        .and_then(|id| owner_view.get(id))
                        .is_some_and(|r| r == Role::Removed.as_str());
                    removed || v.as_ref().is_some_and(|v| v.members == owner_view)
                });
            }
            if agree || c.now() >= until {
                let word = if agree {
                    "agree on"
                } else {
                    "do not yet agree on"
                };
                let roles: Vec<String> = (0..c.nodes.len())
                    .filter_map(|n| {
                        let id = c.nodes[n].identity.as_ref()?;
                        Some(format!("{}={}", c.nodes[n].name, owner_view.get(id)?))
                    })
                    .collect();
                c.event(format!("members {word} roles {}", roles.join(" ")));
                break;
            }
        }
        self.roles.clear();
        for n in 0..c.nodes.len() {
            let Some(id) = c.nodes[n].identity.clone() else {
                continue;
            };
            if let Some(role) = owner_view.get(&id).and_then(|r| parse_role(r)) {
                self.roles.insert(n, role);
                if role == Role::Removed && c.nodes[n].member {
                    c.nodes[n].member = false;
                    c.event(format!("{} is no longer a member", c.nodes[n].name));
                }
            }
        }
    }

    /// After liveness: every live reader's write is refused with 403.
    fn readers_are_refused(&mut self, c: &mut Cluster) {
        let members = c.live_members();
        let Some(Some(agreed)) = c.verdicts(&[0]).pop() else {
            return;
        };
        for n in members {
            let role = c.nodes[n]
                .identity
                .as_ref()
                .and_then(|id| agreed.members.get(id))
                .and_then(|r| parse_role(r));
            if role != Some(Role::Reader) {
                continue;
            }
            let name = c.nodes[n].name.clone();
            match c.probe_add(n) {
                Ok(id) => c.violation("authorization", format!("reader {name} wrote {id}")),
                Err(Some(ErrorKind::Forbidden)) => {}
                Err(kind) => {
                    let detail = format!("reader {name}'s write failed with {kind:?}, not 403");
                    c.violation("authorization", detail);
                }
            }
        }
    }
}
