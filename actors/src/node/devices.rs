//! Our identity's devices through [`NodeHandle`]: `device list` (every device of the
//! identity that a space of this node knows, revoked or not, online or not) and
//! `device revoke` (a revocation written into every space of the node where this device is
//! an admitted member; see `space/devices.rs` and `credentials/revocation.rs`).
//!
//! Until the identity space exists, the spaces are where devices and revocations are known:
//! a device none of them knows is refused as unknown, and a revocation reaches the spaces
//! this node is in (and, through replication, every member of them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::handle::user_key;
use super::{NodeError, NodeHandle};
use crate::space::{ListSpaces, OurDevices, ResolveSpace, RevokeOurDevice, Revoked};
use crate::types::PublicKey;

/// One device of our identity, as `device list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_key: String,
    /// The device's profile name (none yet: DeviceProfile credentials come with the
    /// identity space).
    pub name: Option<String>,
    /// Revoked in some space of this node.
    pub revoked: bool,
    /// Heard within the presence timeout in some space (this device always, unless revoked).
    pub online: bool,
    pub this_device: bool,
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
    /// Per space of this node (resolved now), its actor.
    async fn space_actors(
        &self,
    ) -> Result<Vec<(PublicKey, actix::Addr<crate::space::SpaceActor>)>, NodeError> {
        let mut actors = Vec::new();
        for info in self.directory.send(ListSpaces).await? {
            let Ok(Ok(addr)) = self
                .directory
                .send(ResolveSpace(info.space_key.clone()))
                .await
            else {
                continue;
            };
            if let Ok(key) = info.space_key.parse() {
                actors.push((key, addr));
            }
        }
        Ok(actors)
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
                    name: None,
                    revoked,
                    this_device: device == me,
                }
            })
            .collect())
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
        for (space, addr) in self.space_actors().await? {
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
