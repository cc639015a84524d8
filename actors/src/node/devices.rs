//! Our identity's devices through [`NodeHandle`]: `device list` (every device of the
//! identity that a space of this node knows, revoked or not, online or not) and
//! `device revoke` (a revocation written into every space of the node where this device is
//! an admitted member; see `space/devices.rs` and `credentials/revocation.rs`).
//!
//! The spaces, the identity space among them, are where devices and revocations are known:
//! a device none of them knows is refused as unknown, and a revocation reaches the spaces
//! this node is in (and, through replication, every member of them). Every device of the
//! identity has its feeds admitted in the identity space, so each knows every other.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::handle::user_key;
use super::{NodeError, NodeHandle};
use crate::identity::{DeviceName, RenameDevice};
use crate::invitation::{
    AcceptInvitation, CreateDeviceInvitation, CreatedInvitation, InvitationKind,
    InvitationProgress, InvitationRequestError, InviteOptions,
};
use crate::space::{AllSpaces, HaloSpace, NameOurDevice, OurDeviceNames, OurDevices};
use crate::space::{RevokeOurDevice, Revoked};
use crate::types::PublicKey;

/// One device of our identity, as `device list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_key: String,
    /// The name the device gave itself (`device rename`), as its `DeviceProfile` in the
    /// identity space shows it; this device's own name as it keeps it.
    pub name: Option<String>,
    /// Revoked in some space of this node.
    pub revoked: bool,
    /// Heard within the presence timeout in some space (this device always, unless revoked).
    pub online: bool,
    pub this_device: bool,
}

/// What `device rename` did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRenamed {
    pub device_key: String,
    pub name: String,
    /// Whether the identity space shows the name now; if not (this device is not admitted
    /// there yet), it is written there as soon as it can be.
    pub shown: bool,
}

/// What `device revoke` did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRevoked {
    pub device_key: String,
    /// Spaces where a revocation was written now.
    pub revoked_in: Vec<String>,
    /// Spaces where the device was revoked already.
    pub already_in: Vec<String>,
    /// Spaces where none could be written (space key, why), e.g. not admitted yet.
    pub skipped: Vec<SkippedSpace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SkippedSpace {
    pub space_key: String,
    pub reason: String,
}

impl NodeHandle {
    /// Per space of this node, the identity space included, its actor.
    async fn space_actors(
        &self,
    ) -> Result<Vec<(PublicKey, actix::Addr<crate::space::SpaceActor>)>, NodeError> {
        let all = self.directory.send(AllSpaces).await?;
        Ok(all.into_iter().map(|(key, addr, _)| (key, addr)).collect())
    }

    /// Whether a space of this node (the identity space among them) holds a revocation of
    /// this device.
    pub async fn this_device_revoked(&self) -> Result<bool, NodeError> {
        let me = self.device_key();
        for (_, addr) in self.space_actors().await? {
            if addr.send(OurDevices).await?.get(&me) == Some(&true) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Our identity's devices that any space of this node knows (this device always), by
    /// device key.
    pub async fn device_list(&self) -> Result<Vec<DeviceInfo>, NodeError> {
        self.identity_show().await?;
        let me = self.device_key();
        let mut revoked: BTreeMap<PublicKey, bool> = BTreeMap::from([(me, false)]);
        for (_, addr) in self.space_actors().await? {
            for (device, r) in addr.send(OurDevices).await? {
                *revoked.entry(device).or_default() |= r;
            }
        }
        let names = self.device_names().await?;
        let online: Vec<String> = self
            .devices_online()
            .await?
            .into_iter()
            .map(|d| d.device_key)
            .collect();
        Ok(revoked
            .into_iter()
            .map(|(device, revoked)| {
                let key = device.to_hex();
                DeviceInfo {
                    online: !revoked && (device == me || online.contains(&key)),
                    device_key: key,
                    name: names.get(&device).cloned(),
                    revoked,
                    this_device: device == me,
                }
            })
            .collect())
    }

    /// The names our identity's devices gave themselves, as the identity space shows them,
    /// with this device's own name as it keeps it.
    async fn device_names(&self) -> Result<BTreeMap<PublicKey, String>, NodeError> {
        let mut names = match self.directory.send(HaloSpace).await? {
            Some((_, halo)) => halo.send(OurDeviceNames).await?,
            None => BTreeMap::new(),
        };
        names.remove(&self.device_key());
        if let Some(mine) = self.identity.send(DeviceName).await? {
            names.insert(self.device_key(), mine);
        }
        Ok(names)
    }

    /// Names this device `name` (checked like every display name): kept in this node's
    /// store and shown to the identity's other devices through the identity space.
    pub async fn device_rename(&self, name: String) -> Result<DeviceRenamed, NodeError> {
        self.identity_show().await?;
        self.identity.send(RenameDevice(name.clone())).await??;
        let shown = match self.directory.send(HaloSpace).await? {
            Some((_, halo)) => match halo.send(NameOurDevice(name.clone())).await? {
                Ok(_) => true,
                Err(e) => {
                    tracing::debug!(error = %e, "the identity space cannot show this device's name yet");
                    false
                }
            },
            None => false,
        };
        Ok(DeviceRenamed {
            device_key: self.device_key().to_hex(),
            name,
            shown,
        })
    }

    /// Revokes `device_key`, a device of our identity, in every space of this node. Refused
    /// for this device, for a device no space knows as ours, and when no space could take
    /// the revocation.
    pub async fn device_revoke(&self, device_key: &str) -> Result<DeviceRevoked, NodeError> {
        let device = user_key(device_key, "a device key")?;
        let known = self.device_list().await?;
        let hex = device.to_hex();
        let Some(info) = known.iter().find(|d| d.device_key == hex) else {
            return Err(NodeError::Invalid(format!(
                "device {hex} is not a device of this identity in any space of this node (see `echo-node device list`)"
            )));
        };
        if info.this_device {
            return Err(NodeError::Invalid(
                "this device cannot revoke itself; revoke it from another device of the identity, or recover the identity from its seed phrase on a fresh data dir and revoke it there".into(),
            ));
        }
        let mut out = DeviceRevoked {
            device_key: hex,
            revoked_in: Vec::new(),
            already_in: Vec::new(),
            skipped: Vec::new(),
        };
        // The identity space last: its revocations are spread to the node's other spaces
        // (`space/halo.rs`), which would otherwise race this loop for them.
        let mut spaces = self.directory.send(AllSpaces).await?;
        spaces.sort_by_key(|(_, _, halo)| *halo);
        for (space, addr, _) in spaces {
            match addr.send(RevokeOurDevice(device)).await? {
                Ok(Revoked::Written { .. }) => out.revoked_in.push(space.to_hex()),
                Ok(Revoked::Already) => out.already_in.push(space.to_hex()),
                Err(e) => out.skipped.push(SkippedSpace {
                    space_key: space.to_hex(),
                    reason: e.to_string(),
                }),
            }
        }
        if out.revoked_in.is_empty() && out.already_in.is_empty() {
            let why: Vec<String> = out.skipped.iter().map(|s| s.reason.clone()).collect();
            return Err(NodeError::Invalid(format!(
                "no space of this node could record the revocation: {}",
                why.join("; ")
            )));
        }
        Ok(out)
    }
}

/// What `device join` answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceJoined {
    pub identity_key: String,
    pub device_key: String,
    /// The identity's spaces this device has joined, by key.
    pub spaces: Vec<String>,
    /// Those of them this device could not write to yet when `device join` returned (their
    /// admission had not replicated from a peer within the timeout; it will when one is
    /// reached).
    pub pending: Vec<String>,
}

impl NodeHandle {
    /// Creates a device invitation: a fresh data dir joins this identity with its code (and
    /// auth code) through `device join`. Persisted before this returns, like every
    /// invitation; `invite list` and `invite cancel` show and end it.
    pub async fn device_invite(
        &self,
        options: InviteOptions,
    ) -> Result<CreatedInvitation, NodeError> {
        self.identity_show().await?;
        Ok(self
            .invitations
            .send(CreateDeviceInvitation { options })
            .await??)
    }

    /// Joins the identity of a device invitation on this fresh node: authenticates to the
    /// host device, takes the identity on, joins the identity space and every space it
    /// lists, and returns once this device may write in the identity space and, within
    /// `timeout_ms`, in every listed space (those still waiting are named in `pending`).
    pub async fn device_join(
        &self,
        code: &str,
        auth_code: Option<String>,
        timeout_ms: u64,
        progress: Option<mpsc::UnboundedSender<InvitationProgress>>,
    ) -> Result<DeviceJoined, NodeError> {
        if timeout_ms == 0 {
            return Err(NodeError::Invalid("the timeout must be more than 0".into()));
        }
        let started = tokio::time::Instant::now();
        let answer = self
            .invitations
            .send(AcceptInvitation {
                kind: InvitationKind::Device,
                code: code.to_string(),
                auth_code,
                timeout_ms,
                progress,
            })
            .await??;
        answer
            .await
            .map_err(|_| InvitationRequestError::Unavailable)??;
        let me = self.identity_show().await?;
        let deadline = started + Duration::from_millis(timeout_ms);
        let mut joined = DeviceJoined {
            identity_key: me.identity_key,
            device_key: me.device_key,
            spaces: Vec::new(),
            pending: Vec::new(),
        };
        for info in self.space_list().await? {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = self
                .space_wait_writable(&info.space_key, left.as_millis() as u64)
                .await;
            if wait.is_err() {
                joined.pending.push(info.space_key.clone());
            }
            joined.spaces.push(info.space_key);
        }
        Ok(joined)
    }
}

impl NodeHandle {
    /// The spaces of this node whose member `identity` is, with `device` not revoked there:
    /// what this node answers a recovered device of that identity that asks (see
    /// `invitation/spaces_of.rs`).
    pub async fn spaces_of_identity(
        &self,
        identity: PublicKey,
        device: PublicKey,
    ) -> Result<Vec<PublicKey>, NodeError> {
        Ok(self
            .directory
            .send(crate::space::SpacesOfIdentity { identity, device })
            .await?)
    }
}
