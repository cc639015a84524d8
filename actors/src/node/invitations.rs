//! [`NodeHandle`]'s invitation and membership requests: `invite create/accept/list/cancel`,
//! `space set-role/remove-member`.

use tokio::sync::mpsc;

use super::{NodeError, NodeHandle};
use crate::credentials::Role;
use crate::invitation::{
    AcceptedInvitation, CreatedInvitation, InvitationInfo, InvitationProgress, InviteOptions,
};

impl NodeHandle {
    /// Creates an invitation to `space` (OWNER/ADMIN only). It is persisted before this
    /// returns, and served until it ends (used, cancelled, 3 wrong codes, expired).
    pub async fn invite_create(
        &self,
        space: &str,
        options: InviteOptions,
    ) -> Result<CreatedInvitation, NodeError> {
        let _ = (space, options);
        Err(NodeError::Unavailable)
    }

    /// Accepts an invitation: finds the host, authenticates, is admitted, and returns once
    /// this node may write in the space. State changes go to `progress` as they happen.
    /// Fails with `InvitationRequestError::Failed` naming the terminal state and reason.
    pub async fn invite_accept(
        &self,
        code: &str,
        auth_code: Option<String>,
        timeout_ms: u64,
        progress: Option<mpsc::UnboundedSender<InvitationProgress>>,
    ) -> Result<AcceptedInvitation, NodeError> {
        let _ = (code, auth_code, timeout_ms, progress);
        Err(NodeError::Unavailable)
    }

    /// The invitations this node hosts (of one space, or all), ordered by id.
    pub async fn invite_list(&self, space: Option<&str>) -> Result<Vec<InvitationInfo>, NodeError> {
        let _ = space;
        Err(NodeError::Unavailable)
    }

    /// Cancels an invitation this node hosts; guests in a handshake get CANCELLED.
    pub async fn invite_cancel(&self, invitation_id: &str) -> Result<InvitationInfo, NodeError> {
        let _ = invitation_id;
        Err(NodeError::Unavailable)
    }

    /// Changes a member's role (ADMIN, EDITOR or READER; OWNER/ADMIN only; never the
    /// OWNER's).
    pub async fn space_set_role(
        &self,
        space: &str,
        identity_key: &str,
        role: Role,
    ) -> Result<(), NodeError> {
        let _ = (space, identity_key, role);
        Err(NodeError::Unavailable)
    }

    /// Removes a member (OWNER/ADMIN only; never the OWNER). Its channels for the space
    /// are closed.
    pub async fn space_remove_member(
        &self,
        space: &str,
        identity_key: &str,
    ) -> Result<(), NodeError> {
        let _ = (space, identity_key);
        Err(NodeError::Unavailable)
    }

    /// Waits until this node may write in `space` (our data feed admitted, as a member that
    /// is not REMOVED), or fails with a clear error after `timeout_ms`. `space join` calls it
    /// after recording the space, so that a write right after `join` succeeds.
    pub async fn space_wait_writable(&self, space: &str, timeout_ms: u64) -> Result<(), NodeError> {
        let _ = (space, timeout_ms);
        Err(NodeError::Unavailable)
    }
}
