//! Invitations as users drive them: a host creates one (`invite_create`), guests accept it
//! (`invite_accept`, with the right or a wrong proof), hosts cancel and list them. Every
//! request is traced and recorded in an [`InvitationLog`] for the invitations checker: an
//! accept runs on the guest as one job that stamps each progress state and the answer with
//! the simulated wall clock, and after a SUCCESS makes the guest's first write at once.
//!
//! Invitation codes carry the host's addresses as `NetworkActor` reports them. Simulated
//! nodes bind every interface (`0.0.0.0`, as echo-node does by default) and advertise their
//! own IP (`MeshConfig::advertise_ips`), so a code names that IP first and loopback after it;
//! guests get the code exactly as made, and a code that does not name the host's address
//! first is a violation.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use echo_actors::invitation::{
    AuthMethod, InvitationCode, InvitationProgress, InvitationRequestError, InviteOptions,
};
use echo_actors::node::{ErrorKind, NodeError};
use echo_actors::types::Clock;
use serde_json::json;
use tokio::sync::mpsc;

use super::host::{SimClock, EPOCH_MS};
use super::{Cluster, Pending};
use crate::checkers::invitations::{
    Accept, Answer, FirstWrite, HostRecord, Invitation, InvitationLog, ADMISSION_WAIT_MS,
    HANDSHAKE_SLACK_MS,
};

/// An invitation as the scenario hands it to guests.
#[derive(Debug, Clone)]
pub struct Invite {
    pub label: String,
    pub id: String,
    pub host: usize,
    /// The code as the host made it.
    pub code: String,
    pub pin: Option<String>,
    pub auth: AuthMethod,
    /// For `key` auth: the identity it names.
    pub guest_key: Option<String>,
}

/// What a guest gives besides the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The right PIN (or nothing, for `none` and `key` auth).
    Right,
    /// A wrong 6-digit PIN.
    WrongPin,
}

/// What an accept job reports.
struct AcceptRun {
    start: u64,
    end: u64,
    answer: Answer,
    progress: Vec<(u64, String)>,
    first_write: Option<FirstWrite>,
}

/// An accept on its way.
pub struct PendingAccept {
    pending: Pending<AcceptRun>,
    accept: Accept,
    submitted: u64,
    label: String,
}

fn answer_of(result: &Result<echo_actors::invitation::AcceptedInvitation, NodeError>) -> Answer {
    match result {
        Ok(a) => Answer::Accepted {
            space_key: a.space_key.clone(),
            role: a.role.clone(),
        },
        Err(NodeError::Invitation(InvitationRequestError::Failed { state, reason })) => {
            Answer::Failed {
                state: state.name().to_string(),
                reason: reason.clone(),
            }
        }
        Err(e) => Answer::Other(e.code().to_string()),
    }
}

/// A 6-digit code other than `pin`.
fn wrong_pin(pin: Option<&str>, salt: u64) -> String {
    let right: u64 = pin.and_then(|p| p.parse().ok()).unwrap_or(0);
    format!("{:06}", (right + 1 + salt % 999_999) % 1_000_000)
}

impl Cluster {
    /// `host` creates an invitation to the shared space; it is recorded in `log` as `label`.
    pub fn invite(
        &mut self,
        log: &mut InvitationLog,
        host: usize,
        label: &str,
        options: InviteOptions,
    ) -> Option<Invite> {
        let space = self.space.clone().unwrap_or_default();
        let sent = options.clone();
        let answer = self.call(
            host,
            move |h| async move { h.invite_create(&space, sent).await },
        );
        let name = self.nodes[host].name.clone();
        let created = match answer {
            Some(Ok(created)) => created,
            other => {
                let what = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "unanswered".to_string(),
                };
                self.event(format!("{name} cannot create {label}: {what}"));
                return None;
            }
        };
        let code = match InvitationCode::decode(&created.invitation_code) {
            Ok(code) => code,
            Err(e) => {
                self.violation(
                    "invitations",
                    format!("{label}'s code does not decode: {e}"),
                );
                return None;
            }
        };
        // Guests get the code exactly as the host made it: its addresses must reach the
        // host (the advertised IP first, then loopback, which on a guest's machine is the
        // guest itself).
        let named = code.addrs.clone();
        if named.first() != Some(&self.nodes[host].addr) {
            self.violation(
                "invitations",
                format!(
                    "{label}'s code names {named:?}, not first the host's address {}",
                    self.nodes[host].addr
                ),
            );
        }
        let addrs = named.clone();
        let space_key = code.space_key.to_hex();
        let detail = format!(
            "{name} creates {label} {}: {} auth, {}, {}, handshake {} ms, lifetime {} ms; code \
             names {named:?}, guests get {addrs:?}",
            &created.invitation_id[..8],
            options.auth.name(),
            options.role,
            if options.multi_use {
                "multi-use"
            } else {
                "single-use"
            },
            options.handshake_timeout_ms,
            options.lifetime_ms,
        );
        self.event(detail);
        log.invitations.insert(
            created.invitation_id.clone(),
            Invitation {
                label: label.to_string(),
                host: name,
                space_key,
                auth: options.auth.name().to_string(),
                role: options.role.as_str().to_string(),
                multi_use: options.multi_use,
                expires_at_ms: created.expires_at,
            },
        );
        Some(Invite {
            label: label.to_string(),
            id: created.invitation_id,
            host,
            code: code.encode(),
            pin: created.auth_code,
            auth: options.auth,
            guest_key: options.guest_key,
        })
    }

    /// `guest` starts accepting `invite` with `proof`; the answer is collected by
    /// [`Cluster::finish_accepts`].
    pub fn start_accept(
        &mut self,
        guest: usize,
        invite: &Invite,
        proof: Proof,
        timeout_ms: u64,
    ) -> PendingAccept {
        let identity = self.nodes[guest].identity.clone().unwrap_or_default();
        let salt = self.below(1_000_000);
        let auth_code = match (invite.auth, proof) {
            (AuthMethod::Pin, Proof::Right) => invite.pin.clone(),
            (_, Proof::WrongPin) => Some(wrong_pin(invite.pin.as_deref(), salt)),
            _ => None,
        };
        let right_proof = match invite.auth {
            AuthMethod::Pin => auth_code.is_some() && auth_code == invite.pin,
            AuthMethod::Key => invite.guest_key.as_deref() == Some(identity.as_str()),
            AuthMethod::None => true,
        };
        let name = self.nodes[guest].name.clone();
        let detail = format!(
            "{name} accepts {} with {} (timeout {timeout_ms} ms)",
            invite.label,
            match (&auth_code, right_proof) {
                (Some(c), true) => format!("the right code {c}"),
                (Some(c), false) => format!("the wrong code {c}"),
                (None, true) => "no code".to_string(),
                (None, false) => "no code, not the identity it names".to_string(),
            }
        );
        self.event(detail);
        let code = invite.code.clone();
        let pending = self.submit(guest, move |h| async move {
            accept_job(h, code, auth_code, timeout_ms, name).await
        });
        PendingAccept {
            pending,
            accept: Accept {
                invitation: invite.id.clone(),
                guest: self.nodes[guest].name.clone(),
                identity,
                right_proof,
                start_ms: EPOCH_MS + self.now(),
                timeout_ms,
                end_ms: None,
                answer: None,
                progress: Vec::new(),
                first_write: None,
            },
            submitted: self.now(),
            label: invite.label.clone(),
        }
    }

    /// Waits for every accept in `accepts` until its bound (timeout + slack + the guest's
    /// admission wait) and records each in `log`; answers whether each succeeded.
    pub fn finish_accepts(
        &mut self,
        log: &mut InvitationLog,
        accepts: Vec<PendingAccept>,
    ) -> Vec<bool> {
        let until = accepts
            .iter()
            .map(|a| {
                a.submitted + a.accept.timeout_ms + HANDSHAKE_SLACK_MS + ADMISSION_WAIT_MS + 1_000
            })
            .max()
            .unwrap_or(0);
        let wait = until.saturating_sub(self.now());
        let (pendings, metas): (Vec<_>, Vec<_>) = accepts
            .into_iter()
            .map(|a| (a.pending, (a.accept, a.label)))
            .unzip();
        let runs = self.wait_all(pendings, wait);
        let mut out = Vec::new();
        for (run, (mut accept, label)) in runs.into_iter().zip(metas) {
            let guest = accept.guest.clone();
            match run {
                Some(run) => {
                    accept.start_ms = run.start;
                    accept.end_ms = Some(run.end);
                    let states: Vec<&str> = run.progress.iter().map(|(_, s)| s.as_str()).collect();
                    let written = match &run.first_write {
                        Some(FirstWrite::Written(id)) => format!("; writes {id}"),
                        Some(FirstWrite::Refused { code, .. }) => {
                            format!("; write refused: {code}")
                        }
                        Some(FirstWrite::Unanswered) => "; write unanswered".to_string(),
                        None => String::new(),
                    };
                    let detail = format!(
                        "{guest} accept {label} -> {:?} after {} ms [{}]{written}",
                        run.answer,
                        run.end.saturating_sub(run.start),
                        states.join(" ")
                    );
                    self.event(detail);
                    if let Some(FirstWrite::Written(id)) = &run.first_write {
                        self.facts
                            .added(id, &json!({"@type": "guest", "from": guest.clone()}));
                    }
                    out.push(run.answer.succeeded());
                    accept.answer = Some(run.answer);
                    accept.progress = run.progress;
                    accept.first_write = run.first_write;
                }
                None => {
                    self.event(format!("{guest} accept {label} -> no answer"));
                    out.push(false);
                }
            }
            log.accepts.push(accept);
        }
        out
    }

    /// `host` cancels `invite`; the moment it acknowledged is recorded.
    pub fn cancel_invitation(&mut self, log: &mut InvitationLog, invite: &Invite) -> bool {
        let id = invite.id.clone();
        let answer = self.call(
            invite.host,
            move |h| async move { h.invite_cancel(&id).await },
        );
        let name = self.nodes[invite.host].name.clone();
        match answer {
            Some(Ok(info)) => {
                self.event(format!(
                    "{name} cancels {}: {} ({} uses)",
                    invite.label, info.state, info.uses
                ));
                if info.state == "CANCELLED" {
                    log.cancelled_at
                        .insert(invite.id.clone(), EPOCH_MS + self.now());
                }
                true
            }
            Some(Err(e)) => {
                self.event(format!("{name} cannot cancel {}: {e}", invite.label));
                false
            }
            None => {
                self.event(format!("{name} cancel of {} unanswered", invite.label));
                false
            }
        }
    }

    /// What `hosts` list of their invitations (invitation id -> record).
    pub fn host_records(&mut self, hosts: &[usize]) -> BTreeMap<String, HostRecord> {
        let mut out = BTreeMap::new();
        for &host in hosts {
            let answer = self.call(host, |h| async move { h.invite_list(None).await });
            let name = self.nodes[host].name.clone();
            match answer {
                Some(Ok(list)) => {
                    for info in list {
                        self.event(format!(
                            "{name} lists {}: {} ({}), {} attempts left, {} uses",
                            &info.invitation_id[..8],
                            info.state,
                            info.reason.as_deref().unwrap_or("-"),
                            info.attempts_left,
                            info.uses
                        ));
                        out.insert(
                            info.invitation_id,
                            HostRecord {
                                state: info.state,
                                attempts_left: info.attempts_left,
                                uses: info.uses,
                            },
                        );
                    }
                }
                other => {
                    let what = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => "unanswered".to_string(),
                    };
                    self.event(format!("{name} cannot list its invitations: {what}"));
                }
            }
        }
        out
    }

    /// `node`'s members of the shared space (identity -> role).
    pub fn members_of(&mut self, node: usize) -> Option<BTreeMap<String, String>> {
        let space = self.space.clone().unwrap_or_default();
        let answer = self.call(node, move |h| async move { h.space_members(&space).await })?;
        answer.ok().map(|members| {
            members
                .into_iter()
                .map(|m| (m.identity_key, m.role))
                .collect()
        })
    }
}

/// One accept on the guest: every progress state stamped as it comes, the answer, and at
/// once after a SUCCESS the guest's first write.
async fn accept_job(
    h: echo_actors::node::NodeHandle,
    code: String,
    auth_code: Option<String>,
    timeout_ms: u64,
    guest: String,
) -> AcceptRun {
    let clock = SimClock;
    let start = clock.now_ms();
    let (tx, mut rx) = mpsc::unbounded_channel::<InvitationProgress>();
    let stamps: Rc<RefCell<Vec<(u64, String)>>> = Rc::default();
    let sink = stamps.clone();
    let reader = tokio::task::spawn_local(async move {
        while let Some(p) = rx.recv().await {
            sink.borrow_mut()
                .push((SimClock.now_ms(), p.state.name().to_string()));
        }
    });
    let result = h
        .invite_accept(&code, auth_code, timeout_ms, Some(tx))
        .await;
    let end = clock.now_ms();
    // The guest actor drops its progress sender as it stops, right after answering.
    if tokio::time::timeout(Duration::from_millis(500), reader)
        .await
        .is_err()
    {
        tracing::warn!("the progress of an accept did not end");
    }
    let progress = stamps.borrow().clone();
    let answer = answer_of(&result);
    let first_write = match &result {
        Ok(accepted) => Some(
            match h
                .object_add(
                    &accepted.space_key,
                    json!({"@type": "guest", "from": guest}),
                )
                .await
            {
                Ok(id) => FirstWrite::Written(id),
                Err(e) => FirstWrite::Refused {
                    forbidden: e.kind() == ErrorKind::Forbidden,
                    code: e.code().to_string(),
                },
            },
        ),
        Err(_) => None,
    };
    AcceptRun {
        start,
        end,
        answer,
        progress,
        first_write,
    }
}
