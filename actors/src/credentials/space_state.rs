//! The control state of one space, derived from its credentials in order: genesis, members
//! and roles, admitted feeds. Sans-IO: `apply` takes a credential and answers.
//!
//! Rules (from the DXOS reference, plus ours):
//! - The first credential is the one `SpaceGenesis`, issued and signed by the space key.
//! - `SpaceMember` is issued by the space key or by an ADMIN/OWNER; only the space key grants
//!   OWNER; nobody changes their own role; an OWNER is never demoted or removed.
//! - `AdmittedFeed` names a member (not REMOVED); it is issued by that member (for its own
//!   devices) or by an ADMIN/OWNER. A feed is admitted once.
//! - `DeviceProfile` names the device that signed it, for the identity that issued it, with
//!   a valid name (`check_name`); a later one of that device replaces it.
//! - Duplicate credential ids are ignored.
//! - Writers: a data feed block needs an EDITOR or better; a control block needs a member
//!   that is not REMOVED (its credentials are then judged by the rules above).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::{Assertion, Credential, CredentialError, Designation, Role};
use crate::types::{check_name, Hash, PublicKey};

/// A member of the space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    /// Who issued the credential that set the current role.
    pub granted_by: PublicKey,
}

/// An admitted feed and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    pub identity_key: PublicKey,
    pub device_key: PublicKey,
    pub designation: Designation,
}

/// What `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The credential changed the state.
    Changed,
    /// Already seen (same id): nothing to do.
    Duplicate,
}

/// Why a writer may not write a block.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WriteDenied {
    #[error("feed {0} is not admitted to this space")]
    FeedNotAdmitted(PublicKey),
    #[error("feed {feed} carries {got} blocks, not {expected}")]
    WrongDesignation {
        feed: PublicKey,
        expected: &'static str,
        got: &'static str,
    },
    #[error("member {identity} is {role} and may not write {what}")]
    Role {
        identity: PublicKey,
        role: Role,
        what: &'static str,
    },
    #[error("{0} is not a member of this space")]
    NotMember(PublicKey),
    #[error("credential issued by {issuer} cannot appear on a feed of {owner}")]
    ForeignIssuer { issuer: PublicKey, owner: PublicKey },
    #[error("device {0} was revoked by its identity and may not write")]
    Revoked(PublicKey),
    #[error("credential rejected: {0}")]
    Credential(#[from] RuleError),
}

/// Why a credential was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error(transparent)]
    Invalid(#[from] CredentialError),
    #[error("the space has no genesis yet; the first credential must be SpaceGenesis")]
    NoGenesis,
    #[error("the space already has a genesis")]
    SecondGenesis,
    #[error("credential is for space {0}, not this one")]
    WrongSpace(PublicKey),
    #[error("{issuer} may not {action}")]
    NotAllowed { issuer: PublicKey, action: String },
    #[error("credential kind is not valid in a space: {0}")]
    WrongKind(&'static str),
    #[error("feed {0} is already admitted with other details")]
    FeedConflict(PublicKey),
}

/// Members, roles and feeds of one space.
#[derive(Debug, Clone)]
pub struct SpaceState {
    space_key: PublicKey,
    genesis: bool,
    members: BTreeMap<PublicKey, Member>,
    feeds: BTreeMap<PublicKey, FeedInfo>,
    /// (identity, device) -> the device's name, from its latest `DeviceProfile`.
    device_names: BTreeMap<(PublicKey, PublicKey), String>,
    seen: BTreeSet<Hash>,
}

impl SpaceState {
    pub fn new(space_key: PublicKey) -> Self {
        SpaceState {
            space_key,
            genesis: false,
            members: BTreeMap::new(),
            feeds: BTreeMap::new(),
            device_names: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    pub fn space_key(&self) -> PublicKey {
        self.space_key
    }
    pub fn has_genesis(&self) -> bool {
        self.genesis
    }
    pub fn members(&self) -> &BTreeMap<PublicKey, Member> {
        &self.members
    }
    pub fn feeds(&self) -> &BTreeMap<PublicKey, FeedInfo> {
        &self.feeds
    }
    /// The name the devices of `identity` gave themselves, by device key.
    pub fn device_names(&self, identity: &PublicKey) -> BTreeMap<PublicKey, String> {
        self.device_names
            .range((*identity, PublicKey::from_bytes([0; 32]))..)
            .take_while(|((i, _), _)| i == identity)
            .map(|((_, d), n)| (*d, n.clone()))
            .collect()
    }
    pub fn feed(&self, feed: &PublicKey) -> Option<&FeedInfo> {
        self.feeds.get(feed)
    }
    /// Number of credentials applied: changes whenever membership or feeds may have changed.
    pub fn version(&self) -> usize {
        self.seen.len()
    }

    pub fn role(&self, identity: &PublicKey) -> Option<Role> {
        self.members.get(identity).map(|m| m.role)
    }

    /// Verifies `credential` and applies it if the rules allow.
    pub fn apply(&mut self, credential: &Credential) -> Result<Applied, RuleError> {
        credential.verify()?;
        self.apply_verified(credential, credential.id())
    }

    /// [`Self::apply`] for a credential whose signature and chain were already verified and
    /// whose id is `id`: the rules only.
    pub(crate) fn apply_verified(
        &mut self,
        credential: &Credential,
        id: Hash,
    ) -> Result<Applied, RuleError> {
        if self.seen.contains(&id) {
            return Ok(Applied::Duplicate);
        }
        let issuer = credential.issuer;
        let not_allowed = |action: &str| RuleError::NotAllowed {
            issuer,
            action: action.into(),
        };
        match &credential.subject.assertion {
            Assertion::SpaceGenesis { space_key } => {
                if self.genesis {
                    return Err(RuleError::SecondGenesis);
                }
                self.check_space(space_key)?;
                if issuer != self.space_key || credential.subject.id != self.space_key {
                    return Err(not_allowed("create this space"));
                }
                self.genesis = true;
            }
            _ if !self.genesis => return Err(RuleError::NoGenesis),
            Assertion::SpaceMember { space_key, role } => {
                self.check_space(space_key)?;
                let subject = credential.subject.id;
                let by_space_key = issuer == self.space_key;
                if !by_space_key {
                    if !self.role(&issuer).is_some_and(Role::is_admin) {
                        return Err(not_allowed("change membership (needs ADMIN or OWNER)"));
                    }
                    if *role == Role::Owner {
                        return Err(not_allowed("grant OWNER (only the space key can)"));
                    }
                    if subject == issuer {
                        return Err(not_allowed("change its own role"));
                    }
                    if self.role(&subject) == Some(Role::Owner) {
                        return Err(not_allowed("change the OWNER's role"));
                    }
                }
                self.members.insert(
                    subject,
                    Member {
                        role: *role,
                        granted_by: issuer,
                    },
                );
            }
            Assertion::AdmittedFeed {
                space_key,
                identity_key,
                device_key,
                designation,
            } => {
                self.check_space(space_key)?;
                let owner_role = self.role(identity_key);
                if owner_role.is_none_or(|r| r == Role::Removed) {
                    return Err(not_allowed("admit a feed for a non-member"));
                }
                let self_admission = issuer == *identity_key;
                if !self_admission && !self.role(&issuer).is_some_and(Role::is_admin) {
                    return Err(not_allowed(
                        "admit another member's feed (needs ADMIN or OWNER)",
                    ));
                }
                let feed = credential.subject.id;
                let info = FeedInfo {
                    identity_key: *identity_key,
                    device_key: *device_key,
                    designation: *designation,
                };
                match self.feeds.get(&feed) {
                    Some(existing) if *existing != info => {
                        return Err(RuleError::FeedConflict(feed))
                    }
                    _ => {
                        self.feeds.insert(feed, info);
                    }
                }
            }
            Assertion::AuthorizedDevice { .. } => {
                return Err(RuleError::WrongKind(
                    "AuthorizedDevice belongs to an identity",
                ))
            }
            Assertion::IdentityProfile { .. } => {
                return Err(RuleError::WrongKind(
                    "IdentityProfile belongs to an identity",
                ))
            }
            Assertion::RevokeDevice { .. } => {
                // What it denies is decided by `Revocations` (space/core.rs); here only its
                // shape: an identity revokes one of its own devices.
                checked_revocation(credential)?;
            }
            Assertion::RelayedRevocation { revocation } => {
                // What it denies is decided by `Revocations`; here only its shape.
                check_relayed_revocation(credential.subject.id, issuer, revocation)?;
            }
            Assertion::DeviceProfile { display_name } => {
                let device = credential.subject.id;
                if credential.proof.signer != device {
                    return Err(not_allowed("name a device other than the one that signs"));
                }
                check_name(display_name).map_err(|e| RuleError::NotAllowed {
                    issuer,
                    action: format!("name a device so: {e}"),
                })?;
                self.device_names
                    .insert((issuer, device), display_name.clone());
            }
        }
        self.seen.insert(id);
        Ok(Applied::Changed)
    }

    fn check_space(&self, space_key: &PublicKey) -> Result<(), RuleError> {
        if *space_key == self.space_key {
            Ok(())
        } else {
            Err(RuleError::WrongSpace(*space_key))
        }
    }

    /// May `feed` carry a mutation block now?
    pub fn check_data_writer(&self, feed: &PublicKey) -> Result<(), WriteDenied> {
        let info = self
            .feeds
            .get(feed)
            .ok_or(WriteDenied::FeedNotAdmitted(*feed))?;
        if info.designation != Designation::Data {
            return Err(WriteDenied::WrongDesignation {
                feed: *feed,
                expected: "control",
                got: "data",
            });
        }
        let role = self
            .role(&info.identity_key)
            .ok_or(WriteDenied::NotMember(info.identity_key))?;
        if !role.can_edit() {
            return Err(WriteDenied::Role {
                identity: info.identity_key,
                role,
                what: "data",
            });
        }
        Ok(())
    }

    /// May `feed` carry `credential` now? Credentials issued by the space key itself (the
    /// genesis) may stand on any feed: only the space key can have signed them.
    pub fn check_control_writer(
        &self,
        feed: &PublicKey,
        credential: &Credential,
    ) -> Result<(), WriteDenied> {
        if credential.issuer == self.space_key {
            return Ok(());
        }
        if let Assertion::AdmittedFeed {
            identity_key,
            designation: Designation::Control,
            ..
        } = &credential.subject.assertion
        {
            // A member's control feed starts with its own admission; `apply` then checks that
            // the issuer really is that member.
            if credential.subject.id == *feed
                && credential.issuer == *identity_key
                && !self.feeds.contains_key(feed)
            {
                return Ok(());
            }
        }
        let info = self
            .feeds
            .get(feed)
            .ok_or(WriteDenied::FeedNotAdmitted(*feed))?;
        if info.designation != Designation::Control {
            return Err(WriteDenied::WrongDesignation {
                feed: *feed,
                expected: "data",
                got: "control",
            });
        }
        let role = self
            .role(&info.identity_key)
            .ok_or(WriteDenied::NotMember(info.identity_key))?;
        if role == Role::Removed {
            return Err(WriteDenied::Role {
                identity: info.identity_key,
                role,
                what: "credentials",
            });
        }
        if credential.issuer != info.identity_key {
            return Err(WriteDenied::ForeignIssuer {
                issuer: credential.issuer,
                owner: info.identity_key,
            });
        }
        Ok(())
    }
}

/// What a well-formed `RevokeDevice` credential says (see [`checked_revocation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedDevice<'a> {
    pub identity_key: &'a PublicKey,
    pub device_key: &'a PublicKey,
    pub cut: &'a [(PublicKey, u64)],
}

/// The shape rules of a `RevokeDevice` credential (subject, issuer, cut), the same wherever
/// it is read: the subject is the revoked device, the issuer its identity, and the cut names
/// each feed once, at most [`MAX_CUT_FEEDS`] of them. Any other kind is `WrongKind`.
pub fn checked_revocation(credential: &Credential) -> Result<RevokedDevice<'_>, RuleError> {
    let Assertion::RevokeDevice {
        identity_key,
        device_key,
        cut,
    } = &credential.subject.assertion
    else {
        return Err(RuleError::WrongKind("not a device revocation"));
    };
    let (subject, issuer) = (credential.subject.id, credential.issuer);
    let not_allowed = |action: &str| RuleError::NotAllowed {
        issuer,
        action: action.into(),
    };
    if subject != *device_key {
        return Err(not_allowed(
            "revoke a device other than the credential's subject",
        ));
    }
    if issuer != *identity_key {
        return Err(not_allowed("revoke another identity's device"));
    }
    if cut.len() > MAX_CUT_FEEDS {
        return Err(not_allowed(&format!(
            "name more than {MAX_CUT_FEEDS} feeds in a revocation's cut"
        )));
    }
    let feeds: std::collections::BTreeSet<&PublicKey> = cut.iter().map(|(f, _)| f).collect();
    if feeds.len() != cut.len() {
        return Err(not_allowed("name a feed twice in a revocation's cut"));
    }
    Ok(RevokedDevice {
        identity_key,
        device_key,
        cut,
    })
}

/// The shape rules of a `RelayedRevocation` of `revocation`, about `subject`, issued by
/// `issuer`: it copies a well-formed `RevokeDevice` (as [`checked_revocation`] has it) of the
/// subject device, by another identity than the relayer's (an identity writes its own
/// revocations natively). Gives what the copied revocation says.
pub fn check_relayed_revocation(
    subject: PublicKey,
    issuer: PublicKey,
    revocation: &Credential,
) -> Result<RevokedDevice<'_>, RuleError> {
    let not_allowed = |action: &str| RuleError::NotAllowed {
        issuer,
        action: action.into(),
    };
    let revoked = match checked_revocation(revocation) {
        Err(RuleError::WrongKind(_)) => {
            return Err(not_allowed("relay anything but a device revocation"))
        }
        other => other?,
    };
    if subject != *revoked.device_key {
        return Err(not_allowed(
            "relay a revocation of a device other than the credential's subject",
        ));
    }
    if *revoked.identity_key == issuer {
        return Err(not_allowed(
            "relay a revocation of one's own device (write it in this space instead)",
        ));
    }
    Ok(revoked)
}

/// Most feeds a revocation's cut names (a device has two per space).
pub const MAX_CUT_FEEDS: usize = 64;
