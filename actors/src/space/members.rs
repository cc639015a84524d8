//! Membership requests to `SpaceActor`: adding members and changing roles (`AddMember`),
//! admitting an invitation's guest in one durable batch (`AdmitMember`), a member's own feed
//! admission once it learns it was added (`EnsureAdmitted`), and waiting until this node may
//! write (`WaitAdmitted`).
//!
//! Every credential is checked against the current control state (on a copy) before
//! anything is signed into a block, so a refused request writes nothing. Credentials of one
//! request are appended to our control feed with one write and one flush (`AppendMany`),
//! each block with the ones before it in its causal past, and applied in order.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{SpaceActor, SpaceRequestError, Verdict};
use crate::credentials::{Assertion, Credential, Designation, Role, Subject};
use crate::feed::{AppendMany, Payload};
use crate::types::PublicKey;

impl SpaceActor {
    /// Appends `credentials` to our control feed in one durable batch, applies them in
    /// order, and answers once durable.
    pub(super) fn append_credentials(
        &mut self,
        credentials: Vec<Credential>,
    ) -> ResponseActFuture<Self, Result<(), SpaceRequestError>> {
        let control = self.core.record().control_feed;
        let Some(feed) = self.feeds.get(&control).cloned() else {
            return Box::pin(fut::ready(Err(SpaceRequestError::Corrupt(
                "our control feed has no actor".into(),
            ))));
        };
        let append = AppendMany {
            timeframe: self.core.timeframe().clone(),
            payloads: credentials
                .into_iter()
                .map(|c| Payload::Credential(Box::new(c)))
                .collect(),
        };
        Box::pin(feed.send(append).into_actor(self).map(|res, act, _| {
            let blocks = res?.map_err(|e| SpaceRequestError::Storage(e.to_string()))?;
            for block in &blocks {
                match act.core.apply(block) {
                    Ok(Verdict::Accepted(_)) => {}
                    Ok(Verdict::Denied(reason)) => {
                        tracing::error!(%reason, "our own credential was denied")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "our own credential does not apply");
                        act.core.skip(block);
                    }
                }
            }
            act.announce_heads();
            Ok(())
        }))
    }

    /// Issues a credential about `subject` as this device, signing for our identity.
    fn issue(&self, id: PublicKey, assertion: Assertion) -> Credential {
        self.signer
            .issue(Subject { id, assertion }, self.clock.now_ms(), vec![])
    }

    /// Checks `credentials` in order against a copy of the current control state.
    fn check_all(&self, credentials: &[Credential], what: &str) -> Result<(), SpaceRequestError> {
        let mut trial = self.core.state().clone();
        for c in credentials {
            trial
                .apply(c)
                .map_err(|e| SpaceRequestError::Forbidden(format!("cannot {what}: {e}")))?;
        }
        Ok(())
    }

    /// Our identity's role and whether our data feed is admitted.
    pub(super) fn admitted_role(&self) -> Option<Role> {
        let state = self.core.state();
        let role = state.role(&self.signer.issuer)?;
        let data = self.core.record().data_feed;
        (role != Role::Removed && state.feed(&data).is_some()).then_some(role)
    }

    /// Our identity was removed from the space, or this device was revoked: the control
    /// state says so (it never does while still joining).
    pub(super) fn shut_out(&self) -> bool {
        let me = self.signer.issuer;
        self.core.state().role(&me) == Some(Role::Removed)
            || self
                .core
                .revocations()
                .is_revoked(&me, &self.signer.key.public())
    }

    /// Answers every `WaitAdmitted` whose condition now holds (called whenever the control
    /// state may have changed).
    pub(super) fn wake_admission_waiters(&mut self) {
        if self.admission_waiters.is_empty() {
            return;
        }
        if let Some(role) = self.admitted_role() {
            for waiter in std::mem::take(&mut self.admission_waiters) {
                let _ = waiter.send(role);
            }
        }
    }
}

fn refused(e: SpaceRequestError) -> AtomicResponse<SpaceActor, Result<(), SpaceRequestError>> {
    AtomicResponse::new(Box::pin(fut::ready(Err(e))))
}

/// Add (or change the role of) a member by identity key. OWNER/ADMIN only; OWNER is never
/// granted, nor changed.
#[derive(Message)]
#[rtype(result = "Result<(), SpaceRequestError>")]
pub struct AddMember {
    pub identity: PublicKey,
    pub role: Role,
}

impl Handler<AddMember> for SpaceActor {
    type Result = AtomicResponse<Self, Result<(), SpaceRequestError>>;
    fn handle(&mut self, msg: AddMember, _: &mut Context<Self>) -> Self::Result {
        let space_key = self.core.record().space_key;
        let credential = self.issue(
            msg.identity,
            Assertion::SpaceMember {
                space_key,
                role: msg.role,
            },
        );
        let what = if msg.role == Role::Removed {
            "remove member"
        } else {
            "set role"
        };
        if let Err(e) = self.check_all(std::slice::from_ref(&credential), what) {
            return refused(e);
        }
        AtomicResponse::new(self.append_credentials(vec![credential]))
    }
}

/// Admit an invitation's guest: `SpaceMember(role)` for its identity and `AdmittedFeed` for
/// its control and data feeds on its device, in one durable batch. Answered once durable.
#[derive(Message)]
#[rtype(result = "Result<(), SpaceRequestError>")]
pub struct AdmitMember {
    pub identity: PublicKey,
    pub role: Role,
    pub device: PublicKey,
    pub control_feed: PublicKey,
    pub data_feed: PublicKey,
}

impl Handler<AdmitMember> for SpaceActor {
    type Result = AtomicResponse<Self, Result<(), SpaceRequestError>>;
    fn handle(&mut self, msg: AdmitMember, _: &mut Context<Self>) -> Self::Result {
        if msg.control_feed == msg.data_feed {
            return refused(SpaceRequestError::Invalid(
                "the guest's control and data feeds are the same key".into(),
            ));
        }
        let space_key = self.core.record().space_key;
        let mut credentials = vec![];
        // A guest that is a member already (say, READER asking again) keeps its membership
        // credential as it is unless the role differs.
        if self.core.state().role(&msg.identity) != Some(msg.role) {
            credentials.push(self.issue(
                msg.identity,
                Assertion::SpaceMember {
                    space_key,
                    role: msg.role,
                },
            ));
        }
        for (feed, designation) in [
            (msg.control_feed, Designation::Control),
            (msg.data_feed, Designation::Data),
        ] {
            if self.core.state().feed(&feed).is_some() {
                continue;
            }
            credentials.push(self.issue(
                feed,
                Assertion::AdmittedFeed {
                    space_key,
                    identity_key: msg.identity,
                    device_key: msg.device,
                    designation,
                },
            ));
        }
        if credentials.is_empty() {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        if let Err(e) = self.check_all(&credentials, "admit the guest") {
            return refused(e);
        }
        tracing::info!(space = %space_key.short(), guest = %msg.identity.short(), role = msg.role.as_str(), "admitting an invitation's guest");
        AtomicResponse::new(self.append_credentials(credentials))
    }
}

/// Wait until this node may take part in the space: our identity a member (not REMOVED)
/// and our data feed admitted. Answers the role then, or an error after `timeout`.
#[derive(Message)]
#[rtype(result = "Result<Role, SpaceRequestError>")]
pub struct WaitAdmitted {
    pub timeout: Duration,
}

impl Handler<WaitAdmitted> for SpaceActor {
    type Result = ResponseFuture<Result<Role, SpaceRequestError>>;
    fn handle(&mut self, msg: WaitAdmitted, _: &mut Context<Self>) -> Self::Result {
        if let Some(role) = self.admitted_role() {
            return Box::pin(async move { Ok(role) });
        }
        let (tx, rx) = oneshot::channel();
        self.admission_waiters.push(tx);
        let identity = self.signer.issuer;
        Box::pin(async move {
            match tokio::time::timeout(msg.timeout, rx).await {
                Ok(Ok(role)) => Ok(role),
                Ok(Err(_)) => Err(SpaceRequestError::Unavailable),
                Err(_) => Err(SpaceRequestError::NotAdmitted(format!(
                    "not admitted after {:?}: no peer has shown this node a membership for \
                     identity {identity} yet (a member must add it, and this node must reach \
                     a peer); the space is kept and the node keeps trying",
                    msg.timeout
                ))),
            }
        })
    }
}

/// Once our identity is a member, admit our own control and data feeds (a member that joined
/// by key does this as soon as it has replicated its membership).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EnsureAdmitted;

impl Handler<EnsureAdmitted> for SpaceActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, _: EnsureAdmitted, _: &mut Context<Self>) -> Self::Result {
        let record = self.core.record().clone();
        let state = self.core.state();
        let member = state
            .role(&self.signer.issuer)
            .is_some_and(|r| r != Role::Removed);
        let missing: BTreeMap<u8, (PublicKey, Designation)> = [
            (record.control_feed, Designation::Control),
            (record.data_feed, Designation::Data),
        ]
        .into_iter()
        .filter(|(feed, _)| state.feed(feed).is_none())
        .map(|(feed, designation)| (designation as u8, (feed, designation)))
        .collect();
        if !member || missing.is_empty() {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let credentials: Vec<Credential> = missing
            .into_values()
            .map(|(feed, designation)| {
                self.issue(
                    feed,
                    Assertion::AdmittedFeed {
                        space_key: record.space_key,
                        identity_key: self.signer.issuer,
                        device_key: self.signer.key.public(),
                        designation,
                    },
                )
            })
            .collect();
        tracing::info!(space = %record.space_key.short(), feeds = credentials.len(), "admitting our feeds");
        AtomicResponse::new(Box::pin(self.append_credentials(credentials).map(
            |res, _, _| {
                if let Err(e) = res {
                    tracing::error!(error = %e, "cannot admit our feeds");
                }
            },
        )))
    }
}

/// Our own feeds of the space (control, data), and our device's `AuthorizedDevice`
/// credential: what an invitation's guest sends the host to be admitted.
#[derive(Message)]
#[rtype(result = "(PublicKey, PublicKey, Option<Credential>)")]
pub struct OwnFeeds;

impl Handler<OwnFeeds> for SpaceActor {
    type Result = MessageResult<OwnFeeds>;
    fn handle(&mut self, _: OwnFeeds, _: &mut Context<Self>) -> Self::Result {
        let record = self.core.record();
        MessageResult((
            record.control_feed,
            record.data_feed,
            self.signer.chain.clone(),
        ))
    }
}

/// May this node invite a guest with `role`? (OWNER/ADMIN only; OWNER and REMOVED are not
/// roles to invite with.) Answers the space key.
#[derive(Message)]
#[rtype(result = "Result<PublicKey, SpaceRequestError>")]
pub struct MayInvite {
    pub role: Role,
}

impl Handler<MayInvite> for SpaceActor {
    type Result = Result<PublicKey, SpaceRequestError>;
    fn handle(&mut self, msg: MayInvite, _: &mut Context<Self>) -> Self::Result {
        if matches!(msg.role, Role::Owner | Role::Removed) {
            return Err(SpaceRequestError::Invalid(format!(
                "an invitation cannot grant {}; choose admin, editor or reader",
                msg.role.as_str()
            )));
        }
        match self.core.state().role(&self.signer.issuer) {
            Some(r) if r.is_admin() => Ok(self.core.record().space_key),
            other => Err(SpaceRequestError::Forbidden(format!(
                "only an OWNER or ADMIN may invite; this identity is {} here",
                other.map_or("not a member", |r| r.as_str())
            ))),
        }
    }
}
