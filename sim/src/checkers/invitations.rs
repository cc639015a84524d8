//! Invitations: what guests were told about their `invite accept`s, held against the
//! invitations as created, the hosts' records and the hosts' members.
//!
//! The scenario records an [`InvitationLog`]: every invitation as created (its host, auth,
//! role, single or multi use, expiry), every accept (its guest, whether it gave the right
//! proof, the simulated times it started and ended, every progress state with its time, the
//! answer, and the guest's first write after a SUCCESS), and the moment each host
//! acknowledged a cancel. The checks, each a pure function of the log and what the hosts
//! show afterwards:
//!
//! - [`check_bounds`] (a): every accept reached a terminal state within its handshake
//!   timeout (+ slack), and was answered within the handshake timeout + the guest's wait for
//!   its admission to replicate (+ slack).
//! - [`check_strikes`] (b): per invitation at most 3 wrong codes were reported to guests in
//!   all (each with a different count of attempts left, so none was forgotten, across host
//!   restarts too), the host's record counts at least as many, and no accept that started
//!   after a guest was told "too many attempts" succeeded.
//! - [`check_members`] (c): every SUCCESS names the invitation's space and role, and the
//!   host's space has that guest identity as a member with that role; [`check_uses`]: the
//!   host counted every SUCCESS as a use (a single-use invitation at most one).
//! - [`check_first_writes`] (d): a guest admitted as editor or admin could write at once,
//!   one admitted as reader was refused with 403, and each such write reached the host.
//! - [`check_outcomes`] (e): one terminal outcome per accept: at most one terminal
//!   progress state, last, and the same as the answer; no SUCCESS for a guest without the
//!   right proof, for a second guest of a single-use invitation, or for an accept that
//!   started after the invitation was cancelled or expired.

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;

const CHECKER: &str = "invitations";

/// Slack on the handshake timeout before a missing terminal state is a violation (timers
/// fire on the next tick, frames are in flight).
pub const HANDSHAKE_SLACK_MS: u64 = 2_000;
/// How long after SUCCESS a guest waits for its admission to replicate before it answers
/// (`guest_actor.rs`, `ADMISSION_WAIT`).
pub const ADMISSION_WAIT_MS: u64 = 30_000;

/// One invitation as its host created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The scenario's short name for it (`I3`).
    pub label: String,
    /// The host's node name.
    pub host: String,
    pub space_key: String,
    /// `none`, `pin` or `key`.
    pub auth: String,
    /// The role a guest gets.
    pub role: String,
    pub multi_use: bool,
    /// Wall clock (ms since the Unix epoch).
    pub expires_at_ms: u64,
}

/// How an accept was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted {
        space_key: String,
        role: String,
    },
    /// `InvitationRequestError::Failed`: a terminal state other than SUCCESS.
    Failed {
        state: String,
        reason: String,
    },
    /// Any other error (its code).
    Other(String),
}

impl Answer {
    pub fn succeeded(&self) -> bool {
        matches!(self, Answer::Accepted { .. })
    }
}

/// The guest's first write after a SUCCESS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstWrite {
    Written(String),
    /// The error's kind (`Forbidden`, ...) and code.
    Refused {
        forbidden: bool,
        code: String,
    },
    Unanswered,
}

/// One `invite accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The invitation's id.
    pub invitation: String,
    /// The guest's node name and identity key.
    pub guest: String,
    pub identity: String,
    /// The guest gave the right proof: the right PIN, or it is the identity a `key`
    /// invitation names (always true for `none`).
    pub right_proof: bool,
    /// Wall clock when the request started on the guest (ms since the Unix epoch).
    pub start_ms: u64,
    /// The `timeout_ms` the accept was given.
    pub timeout_ms: u64,
    /// When the answer came (`None`: never, within the scenario's wait).
    pub end_ms: Option<u64>,
    pub answer: Option<Answer>,
    /// Progress states with the wall clock when each was reported.
    pub progress: Vec<(u64, String)>,
    pub first_write: Option<FirstWrite>,
}

impl Accept {
    fn name(&self, log: &InvitationLog) -> String {
        let label = log
            .invitations
            .get(&self.invitation)
            .map_or("?", |i| i.label.as_str());
        format!("{}'s accept of {label} at {}", self.guest, self.start_ms)
    }

    fn succeeded(&self) -> bool {
        self.answer.as_ref().is_some_and(Answer::succeeded)
    }

    /// The count of attempts left that the host told this guest, for a wrong code.
    fn strike(&self) -> Option<u8> {
        let Some(Answer::Failed { reason, .. }) = &self.answer else {
            return None;
        };
        if reason == "too many attempts" {
            return Some(0);
        }
        let rest = reason.strip_prefix("invalid auth code, ")?;
        rest.split_whitespace().next()?.parse().ok()
    }
}

/// What a host's `invite list` shows of one invitation at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    pub state: String,
    pub attempts_left: u8,
    pub uses: u32,
}

/// Everything the scenario observed about invitations.
#[derive(Debug, Clone, Default)]
pub struct InvitationLog {
    /// Invitation id -> invitation.
    pub invitations: BTreeMap<String, Invitation>,
    pub accepts: Vec<Accept>,
    /// Invitation id -> wall clock when its host acknowledged a cancel.
    pub cancelled_at: BTreeMap<String, u64>,
}

fn violation(detail: String) -> Violation {
    Violation {
        checker: CHECKER,
        detail,
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "SUCCESS" | "CANCELLED" | "TIMEOUT" | "ERROR" | "EXPIRED"
    )
}

/// (a) Every accept reached a terminal state within its handshake timeout + slack, and was
/// answered within the timeout + the admission wait + slack.
pub fn check_bounds(log: &InvitationLog) -> Vec<Violation> {
    let mut found = Vec::new();
    for a in &log.accepts {
        let name = a.name(log);
        let state_by = a.start_ms + a.timeout_ms + HANDSHAKE_SLACK_MS;
        let answer_by = state_by + ADMISSION_WAIT_MS;
        match a.progress.iter().find(|(_, s)| is_terminal(s)) {
            Some((at, s)) if *at > state_by => found.push(violation(format!(
                "{name} reached {s} {} ms after it started; its timeout is {} ms",
                at - a.start_ms,
                a.timeout_ms
            ))),
            None if a
                .answer
                .as_ref()
                .is_some_and(|x| matches!(x, Answer::Other(_))) => {}
            None => found.push(violation(format!(
                "{name} never reported a terminal state (progress {:?})",
                a.progress.iter().map(|(_, s)| s).collect::<Vec<_>>()
            ))),
            _ => {}
        }
        match a.end_ms {
            Some(end) if end > answer_by => found.push(violation(format!(
                "{name} was answered {} ms after it started; bound {} ms",
                end - a.start_ms,
                answer_by - a.start_ms
            ))),
            None => found.push(violation(format!("{name} was never answered"))),
            _ => {}
        }
    }
    found
}

/// (b) The 3-strike rule, per invitation, across guests and host restarts.
pub fn check_strikes(log: &InvitationLog, hosts: &BTreeMap<String, HostRecord>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (id, inv) in &log.invitations {
        let accepts: Vec<&Accept> = log.accepts.iter().filter(|a| a.invitation == *id).collect();
        let strikes: Vec<(&Accept, u8)> = accepts
            .iter()
            .filter_map(|a| a.strike().map(|left| (*a, left)))
            .collect();
        let label = &inv.label;
        if strikes.len() > 3 {
            found.push(violation(format!(
                "{label}: {} wrong codes were counted (at most 3)",
                strikes.len()
            )));
        }
        let mut told: BTreeMap<u8, &Accept> = BTreeMap::new();
        for (a, left) in &strikes {
            if *left >= 3 {
                found.push(violation(format!(
                    "{label}: {} was told {left} attempts are left after a wrong code",
                    a.guest
                )));
            }
            if let Some(first) = told.insert(*left, a) {
                found.push(violation(format!(
                    "{label}: both {} and {} were told {left} attempts are left: a wrong code \
                     was not counted",
                    first.guest, a.guest
                )));
            }
        }
        if let Some((exhausted, _)) = strikes.iter().find(|(_, left)| *left == 0) {
            let after = exhausted.end_ms.unwrap_or(u64::MAX);
            for a in &accepts {
                if a.succeeded() && a.start_ms > after {
                    found.push(violation(format!(
                        "{label}: {} succeeded after {} was told \"too many attempts\"",
                        a.name(log),
                        exhausted.guest
                    )));
                }
            }
        }
        let Some(host) = hosts.get(id) else {
            found.push(violation(format!("{label}: its host does not list it")));
            continue;
        };
        let seen = strikes.len().min(3) as u8;
        if host.attempts_left > 3 - seen {
            found.push(violation(format!(
                "{label}: guests were told of {seen} wrong codes, but the host has {} \
                 attempts left",
                host.attempts_left
            )));
        }
        if host.attempts_left == 0 && host.state != "ERROR" {
            found.push(violation(format!(
                "{label}: no attempts left, but the host shows it {}",
                host.state
            )));
        }
    }
    found
}

/// (c) Every SUCCESS names the invitation's space and role, and the host's space has the
/// guest as a member with that role. `members`: host node name -> identity -> role, read
/// after a quiet period. A later SUCCESS of the same guest on the same host supersedes an
/// earlier one.
pub fn check_members(
    log: &InvitationLog,
    members: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut last: BTreeMap<(&str, &str), (&Accept, &Invitation)> = BTreeMap::new();
    for a in log.accepts.iter().filter(|a| a.succeeded()) {
        let Some(inv) = log.invitations.get(&a.invitation) else {
            found.push(violation(format!(
                "{} succeeded with an invitation nobody created",
                a.guest
            )));
            continue;
        };
        if let Some(Answer::Accepted { space_key, role }) = &a.answer {
            if *space_key != inv.space_key || *role != inv.role {
                found.push(violation(format!(
                    "{} was admitted to {space_key} as {role}; {} invites to {} as {}",
                    a.name(log),
                    inv.label,
                    inv.space_key,
                    inv.role
                )));
            }
        }
        let key = (inv.host.as_str(), a.identity.as_str());
        if last.get(&key).is_none_or(|(b, _)| b.start_ms <= a.start_ms) {
            last.insert(key, (a, inv));
        }
    }
    for ((host, identity), (a, inv)) in last {
        let role = members.get(host).and_then(|m| m.get(identity));
        if role != Some(&inv.role) {
            found.push(violation(format!(
                "{} got SUCCESS as {}, but {host}'s space shows {} as {}",
                a.name(log),
                inv.role,
                a.guest,
                role.map_or("no member", String::as_str)
            )));
        }
    }
    found
}

/// (d) After a SUCCESS the guest's first write succeeded at once (editor, admin) or was
/// refused with 403 (reader), and every such write is on the host (`on_host`: host node
/// name -> object ids it holds, read after the liveness phase).
pub fn check_first_writes(
    log: &InvitationLog,
    on_host: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Violation> {
    let mut found = Vec::new();
    for a in log.accepts.iter().filter(|a| a.succeeded()) {
        let Some(inv) = log.invitations.get(&a.invitation) else {
            continue;
        };
        let name = a.name(log);
        let writer = inv.role != "reader";
        match (&a.first_write, writer) {
            (Some(FirstWrite::Written(id)), true) => {
                if !on_host.get(&inv.host).is_some_and(|ids| ids.contains(id)) {
                    found.push(violation(format!(
                        "{name}: its first write {id} never reached the host {}",
                        inv.host
                    )));
                }
            }
            (Some(FirstWrite::Written(id)), false) => found.push(violation(format!(
                "{name}: admitted as reader, yet its write {id} was accepted"
            ))),
            (
                Some(FirstWrite::Refused {
                    forbidden: true, ..
                }),
                false,
            ) => {}
            (Some(FirstWrite::Refused { code, .. }), _) => found.push(violation(format!(
                "{name}: admitted as {}, its first write was refused ({code})",
                inv.role
            ))),
            (Some(FirstWrite::Unanswered) | None, _) => found.push(violation(format!(
                "{name}: its first write after SUCCESS was not answered"
            ))),
        }
    }
    found
}

/// (e) One terminal outcome per accept, the same in the progress and the answer, and never
/// a SUCCESS that the invitation did not allow.
pub fn check_outcomes(log: &InvitationLog) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut successes: BTreeMap<&str, Vec<&Accept>> = BTreeMap::new();
    for a in &log.accepts {
        let name = a.name(log);
        let terminals: Vec<&str> = a
            .progress
            .iter()
            .map(|(_, s)| s.as_str())
            .filter(|s| is_terminal(s))
            .collect();
        if terminals.len() > 1 {
            found.push(violation(format!(
                "{name} reported {} terminal states: {terminals:?}",
                terminals.len()
            )));
        }
        if let (Some(t), Some((_, last))) = (terminals.first(), a.progress.last()) {
            if last != t || terminals.len() > 1 {
                found.push(violation(format!(
                    "{name} went on after {t}: progress {:?}",
                    a.progress.iter().map(|(_, s)| s).collect::<Vec<_>>()
                )));
            }
        }
        match (&a.answer, terminals.first()) {
            (Some(Answer::Accepted { .. }), Some(&"SUCCESS")) => {}
            (Some(Answer::Accepted { .. }), other) => found.push(violation(format!(
                "{name} was answered SUCCESS, but its progress ended {other:?}"
            ))),
            (Some(Answer::Failed { state, reason }), Some(t)) if state != t => {
                found.push(violation(format!(
                    "{name} reported {t}, then was answered {state} ({reason})"
                )))
            }
            (Some(Answer::Failed { state, reason }), _) if state == "SUCCESS" => found.push(
                violation(format!("{name} failed with state SUCCESS ({reason})")),
            ),
            _ => {}
        }
        if !a.succeeded() {
            continue;
        }
        if !a.right_proof {
            found.push(violation(format!(
                "{name} succeeded without the right proof"
            )));
        }
        if let Some(at) = log.cancelled_at.get(&a.invitation) {
            if a.start_ms > *at {
                found.push(violation(format!(
                    "{name} succeeded though the invitation was cancelled at {at}"
                )));
            }
        }
        if let Some(inv) = log.invitations.get(&a.invitation) {
            if a.start_ms >= inv.expires_at_ms {
                found.push(violation(format!(
                    "{name} succeeded though the invitation expired at {}",
                    inv.expires_at_ms
                )));
            }
        }
        successes.entry(&a.invitation).or_default().push(a);
    }
    for (id, won) in successes {
        let Some(inv) = log.invitations.get(id) else {
            continue;
        };
        let guests: BTreeSet<&str> = won.iter().map(|a| a.identity.as_str()).collect();
        if !inv.multi_use && guests.len() > 1 {
            found.push(violation(format!(
                "single-use {} admitted {} guests: {:?}",
                inv.label,
                guests.len(),
                won.iter().map(|a| &a.guest).collect::<Vec<_>>()
            )));
        }
    }
    found
}

/// (c, e) Every SUCCESS is a use the host counted: its record shows at least as many uses
/// as guests were told SUCCESS, and a single-use invitation at most one.
pub fn check_uses(log: &InvitationLog, hosts: &BTreeMap<String, HostRecord>) -> Vec<Violation> {
    let mut found = Vec::new();
    for (id, inv) in &log.invitations {
        let told = log
            .accepts
            .iter()
            .filter(|a| a.invitation == *id && a.succeeded())
            .count() as u32;
        let Some(host) = hosts.get(id) else {
            continue;
        };
        if host.uses < told {
            found.push(violation(format!(
                "{}: {told} guests were told SUCCESS, but its host counts {} uses",
                inv.label, host.uses
            )));
        }
        if !inv.multi_use && host.uses > 1 {
            found.push(violation(format!(
                "single-use {}: its host counts {} uses",
                inv.label, host.uses
            )));
        }
    }
    found
}

/// Every check on one log.
pub fn check_all(
    log: &InvitationLog,
    hosts: &BTreeMap<String, HostRecord>,
    members: &BTreeMap<String, BTreeMap<String, String>>,
    on_host: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Violation> {
    let mut found = check_bounds(log);
    found.extend(check_strikes(log, hosts));
    found.extend(check_members(log, members));
    found.extend(check_uses(log, hosts));
    found.extend(check_first_writes(log, on_host));
    found.extend(check_outcomes(log));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const ID: &str = "i1";

    fn log(multi_use: bool, role: &str) -> InvitationLog {
        let mut log = InvitationLog::default();
        log.invitations.insert(
            ID.into(),
            Invitation {
                label: "I1".into(),
                host: "n0".into(),
                space_key: "space".into(),
                auth: "pin".into(),
                role: role.into(),
                multi_use,
                expires_at_ms: T0 + 1_000_000,
            },
        );
        log
    }

    fn progress(start: u64, last: &str) -> Vec<(u64, String)> {
        [
            "CONNECTING",
            "CONNECTED",
            "READY_FOR_AUTHENTICATION",
            "AUTHENTICATING",
            last,
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| (start + 10 * i as u64, s.to_string()))
        .collect()
    }

    fn success(guest: &str, start: u64, role: &str) -> Accept {
        Accept {
            invitation: ID.into(),
            guest: guest.into(),
            identity: format!("id-{guest}"),
            right_proof: true,
            start_ms: start,
            timeout_ms: 10_000,
            end_ms: Some(start + 100),
            answer: Some(Answer::Accepted {
                space_key: "space".into(),
                role: role.into(),
            }),
            progress: progress(start, "SUCCESS"),
            first_write: Some(if role == "reader" {
                FirstWrite::Refused {
                    forbidden: true,
                    code: "forbidden".into(),
                }
            } else {
                FirstWrite::Written(format!("obj-{guest}"))
            }),
        }
    }

    fn wrong(guest: &str, start: u64, reason: &str) -> Accept {
        Accept {
            right_proof: false,
            answer: Some(Answer::Failed {
                state: "ERROR".into(),
                reason: reason.into(),
            }),
            progress: progress(start, "ERROR"),
            first_write: None,
            ..success(guest, start, "editor")
        }
    }

    fn host(state: &str, attempts_left: u8, uses: u32) -> BTreeMap<String, HostRecord> {
        BTreeMap::from([(
            ID.to_string(),
            HostRecord {
                state: state.into(),
                attempts_left,
                uses,
            },
        )])
    }

    fn details(v: &[Violation]) -> String {
        v.iter()
            .map(|v| v.detail.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn a_clean_log_passes_every_check() {
        let mut l = log(true, "editor");
        l.accepts
            .push(wrong("n2", T0, "invalid auth code, 2 attempts left"));
        l.accepts.push(success("n3", T0 + 50, "editor"));
        let members = BTreeMap::from([(
            "n0".to_string(),
            BTreeMap::from([("id-n3".to_string(), "editor".to_string())]),
        )]);
        let on_host = BTreeMap::from([("n0".to_string(), BTreeSet::from(["obj-n3".to_string()]))]);
        let found = check_all(&l, &host("INIT", 2, 1), &members, &on_host);
        assert!(found.is_empty(), "{}", details(&found));
    }

    #[test]
    fn bounds_catch_a_late_terminal_state_and_a_missing_answer() {
        let mut l = log(true, "editor");
        let mut late = wrong("n2", T0, "timeout");
        late.progress.last_mut().unwrap().0 = T0 + 10_000 + HANDSHAKE_SLACK_MS + 1;
        l.accepts.push(late);
        let mut lost = success("n3", T0, "editor");
        lost.end_ms = None;
        l.accepts.push(lost);
        let mut slow = success("n4", T0, "editor");
        slow.end_ms = Some(T0 + 10_000 + HANDSHAKE_SLACK_MS + ADMISSION_WAIT_MS + 1);
        l.accepts.push(slow);
        let d = details(&check_bounds(&l));
        assert!(
            d.contains("n2's accept of I1") && d.contains("its timeout is 10000 ms"),
            "{d}"
        );
        assert!(
            d.contains("n3's accept of I1 at 1700000000000 was never answered"),
            "{d}"
        );
        assert!(
            d.contains("n4's accept of I1") && d.contains("was answered"),
            "{d}"
        );
    }

    #[test]
    fn strikes_catch_a_fourth_wrong_code_a_forgotten_count_and_a_late_success() {
        let mut l = log(true, "editor");
        l.accepts
            .push(wrong("n2", T0, "invalid auth code, 2 attempts left"));
        // After a host restart that forgot the count.
        l.accepts
            .push(wrong("n3", T0 + 200, "invalid auth code, 2 attempts left"));
        l.accepts
            .push(wrong("n4", T0 + 400, "invalid auth code, 1 attempt left"));
        l.accepts.push(wrong("n5", T0 + 600, "too many attempts"));
        l.accepts.push(success("n6", T0 + 1_000, "editor"));
        let d = details(&check_strikes(&l, &host("ERROR", 0, 1)));
        assert!(d.contains("4 wrong codes were counted"), "{d}");
        assert!(
            d.contains("both n2 and n3 were told 2 attempts are left"),
            "{d}"
        );
        assert!(
            d.contains("n6's accept of I1") && d.contains("too many attempts"),
            "{d}"
        );
        // The host must have counted what the guests were told.
        let mut l = log(true, "editor");
        l.accepts
            .push(wrong("n2", T0, "invalid auth code, 2 attempts left"));
        let d = details(&check_strikes(&l, &host("INIT", 3, 0)));
        assert!(
            d.contains("told of 1 wrong codes, but the host has 3 attempts left"),
            "{d}"
        );
        let d = details(&check_strikes(&l, &host("INIT", 0, 0)));
        assert!(
            d.contains("no attempts left, but the host shows it INIT"),
            "{d}"
        );
    }

    #[test]
    fn members_catch_a_success_the_host_does_not_show() {
        let mut l = log(true, "editor");
        l.accepts.push(success("n2", T0, "editor"));
        l.accepts.push(success("n3", T0, "admin"));
        let members = BTreeMap::from([(
            "n0".to_string(),
            BTreeMap::from([
                ("id-n2".to_string(), "reader".to_string()),
                ("id-n3".to_string(), "editor".to_string()),
            ]),
        )]);
        let d = details(&check_members(&l, &members));
        assert!(d.contains("n2 as reader"), "{d}");
        assert!(
            d.contains("n3's accept of I1") && d.contains("as admin"),
            "{d}"
        );
        let d = details(&check_members(&l, &BTreeMap::new()));
        assert!(d.contains("n2 as no member"), "{d}");
    }

    #[test]
    fn uses_catch_a_success_the_host_did_not_count() {
        let mut l = log(false, "editor");
        l.accepts.push(success("n2", T0, "editor"));
        let d = details(&check_uses(&l, &host("SUCCESS", 3, 0)));
        assert!(
            d.contains("I1: 1 guests were told SUCCESS, but its host counts 0 uses"),
            "{d}"
        );
        let d = details(&check_uses(&l, &host("SUCCESS", 3, 2)));
        assert!(d.contains("single-use I1: its host counts 2 uses"), "{d}");
        assert!(check_uses(&l, &host("SUCCESS", 3, 1)).is_empty());
    }

    #[test]
    fn first_writes_catch_a_refused_editor_a_writing_reader_and_a_lost_write() {
        let mut l = log(true, "editor");
        let mut refused = success("n2", T0, "editor");
        refused.first_write = Some(FirstWrite::Refused {
            forbidden: false,
            code: "not_admitted".into(),
        });
        l.accepts.push(refused);
        l.accepts.push(success("n3", T0, "editor"));
        let d = details(&check_first_writes(&l, &BTreeMap::new()));
        assert!(
            d.contains("its first write was refused (not_admitted)"),
            "{d}"
        );
        assert!(
            d.contains("first write obj-n3 never reached the host n0"),
            "{d}"
        );
        let mut l = log(true, "reader");
        let mut wrote = success("n4", T0, "reader");
        wrote.first_write = Some(FirstWrite::Written("obj-n4".into()));
        l.accepts.push(wrote);
        let d = details(&check_first_writes(&l, &BTreeMap::new()));
        assert!(
            d.contains("admitted as reader, yet its write obj-n4 was accepted"),
            "{d}"
        );
    }

    #[test]
    fn outcomes_catch_two_outcomes_and_successes_the_invitation_did_not_allow() {
        let mut l = log(false, "editor");
        // SUCCESS reported, then answered ERROR.
        let mut two = success("n2", T0, "editor");
        two.answer = Some(Answer::Failed {
            state: "ERROR".into(),
            reason: "not replicated".into(),
        });
        l.accepts.push(two);
        // A wrong PIN that was answered SUCCESS.
        let mut cheat = success("n3", T0, "editor");
        cheat.right_proof = false;
        l.accepts.push(cheat);
        // Two terminal states.
        let mut twice = wrong("n4", T0, "timeout");
        twice.progress.push((T0 + 90, "SUCCESS".into()));
        l.accepts.push(twice);
        // After the cancel.
        l.cancelled_at.insert(ID.into(), T0 + 500);
        l.accepts.push(success("n5", T0 + 600, "editor"));
        let d = details(&check_outcomes(&l));
        assert!(
            d.contains("n2's accept of I1")
                && d.contains("reported SUCCESS, then was answered ERROR"),
            "{d}"
        );
        assert!(
            d.contains("n3's accept of I1") && d.contains("without the right proof"),
            "{d}"
        );
        assert!(
            d.contains("n4's accept of I1") && d.contains("2 terminal states"),
            "{d}"
        );
        assert!(
            d.contains("n5's accept of I1") && d.contains("cancelled"),
            "{d}"
        );
        assert!(d.contains("single-use I1 admitted 2 guests"), "{d}");
        let mut l = log(true, "editor");
        let mut late = success("n6", T0 + 2_000_000, "editor");
        late.progress.truncate(4);
        l.accepts.push(late);
        let d = details(&check_outcomes(&l));
        assert!(d.contains("expired"), "{d}");
        assert!(
            d.contains("answered SUCCESS, but its progress ended None"),
            "{d}"
        );
    }
}
