//! Presence through [`NodeHandle`]: the per-identity view of who is online. Each space
//! keeps its own presence (`crate::presence`); a device is online here if it was heard in
//! any space within the presence timeout. `space_members` (in `handle.rs`) shows the
//! per-space view; `device list` (`devices.rs`) marks the identity's devices online from
//! [`NodeHandle::devices_online`].

use std::collections::BTreeMap;

use super::{NodeError, NodeHandle, OnlineDevice};
use crate::space::{ListSpaces, OnlineDevices, ResolveSpace};
use crate::types::PublicKey;

impl NodeHandle {
    /// Every device heard online in any space of this node (this device too, once the node has
    /// a space), with its
    /// identity and how long ago it was last heard, ordered by device key.
    pub async fn devices_online(&self) -> Result<Vec<OnlineDevice>, NodeError> {
        let mut seen: BTreeMap<PublicKey, (PublicKey, std::time::Duration)> = BTreeMap::new();
        for info in self.directory.send(ListSpaces).await? {
            let Ok(Ok(addr)) = self.directory.send(ResolveSpace(info.space_key)).await else {
                continue;
            };
            for (device, s) in addr.send(OnlineDevices).await? {
                let entry = seen.entry(device).or_insert((s.identity, s.silent));
                entry.1 = entry.1.min(s.silent);
            }
        }
        let me = self.device_key();
        Ok(seen
            .into_iter()
            .map(|(device, (identity, silent))| OnlineDevice {
                device_key: device.to_hex(),
                identity_key: identity.to_hex(),
                silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                this_device: device == me,
            })
            .collect())
    }
}
