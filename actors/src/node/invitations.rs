//! [`NodeHandle`]'s invitation and membership requests: `invite create/accept/list/cancel`,
//! `space set-role/remove-member`, and waiting until a joined space may be written.

use std::time::Duration;

use tokio::sync::mpsc;

use super::handle::user_key;
use super::{NodeError, NodeHandle};
use crate::credentials::Role;
use crate::invitation::{
    AcceptInvitation, AcceptedInvitation, CancelById, CreateInvitation, CreatedInvitation,
    InvitationInfo, InvitationKind, InvitationProgress, InvitationRequestError, InviteOptions,
    ListInvitations,
};
use crate::space::{AddMember, WaitAdmitted};

impl NodeHandle {
    /// Creates an invitation to `space` (OWNER/ADMIN only). It is persisted before this
    /// returns, and served until it ends (used, cancelled, 3 wrong codes, expired).
    pub async fn invite_create(
        &self,
        space: &str,
        options: InviteOptions,
    ) -> Result<CreatedInvitation, NodeError> {
        Ok(self
            .invitations
            .send(CreateInvitation {
                space: space.to_string(),
                options,
            })
            .await??)
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
        if timeout_ms == 0 {
            return Err(NodeError::Invalid("the timeout must be more than 0".into()));
        }
        let answer = self
            .invitations
            .send(AcceptInvitation {
                kind: InvitationKind::Space,
                code: code.to_string(),
                auth_code,
                timeout_ms,
                progress,
            })
            .await??;
        Ok(answer
            .await
            .map_err(|_| InvitationRequestError::Unavailable)??)
    }

    /// The invitations this node hosts (of one space, or all), ordered by id.
    pub async fn invite_list(&self, space: Option<&str>) -> Result<Vec<InvitationInfo>, NodeError> {
        Ok(self
            .invitations
            .send(ListInvitations {
                space: space.map(str::to_string),
            })
            .await??)
    }

    /// Cancels an invitation this node hosts; guests in a handshake get CANCELLED.
    pub async fn invite_cancel(&self, invitation_id: &str) -> Result<InvitationInfo, NodeError> {
        Ok(self
            .invitations
            .send(CancelById(invitation_id.to_string()))
            .await??)
    }

    /// Changes a member's role (ADMIN, EDITOR or READER; OWNER/ADMIN only; never the
    /// OWNER's).
    pub async fn space_set_role(
        &self,
        space: &str,
        identity_key: &str,
        role: Role,
    ) -> Result<(), NodeError> {
        if matches!(role, Role::Owner | Role::Removed) {
            return Err(NodeError::Invalid(format!(
                "{} is not a role to set; choose admin, editor or reader (and remove-member to \
                 remove)",
                role.as_str()
            )));
        }
        self.membership(space, identity_key, role, true).await
    }

    /// Removes a member (OWNER/ADMIN only; never the OWNER). Its channels for the space
    /// are closed.
    pub async fn space_remove_member(
        &self,
        space: &str,
        identity_key: &str,
    ) -> Result<(), NodeError> {
        self.membership(space, identity_key, Role::Removed, true)
            .await
    }

    /// Writes `SpaceMember(role)` for an identity (`member`: it must be a member already).
    pub(super) async fn membership(
        &self,
        space: &str,
        identity_key: &str,
        role: Role,
        member: bool,
    ) -> Result<(), NodeError> {
        let identity = user_key(identity_key, "an identity key")?;
        let addr = self.space(space).await?;
        let members = addr.send(crate::space::ListMembers).await?;
        if member && !members.iter().any(|(k, _)| *k == identity) {
            return Err(NodeError::Space(crate::space::SpaceRequestError::Invalid(
                format!("{identity} is not a member of this space (see `echo-node space members`)"),
            )));
        }
        Ok(addr.send(AddMember { identity, role }).await??)
    }

    /// Waits until this node may write in `space` (our data feed admitted, as a member that
    /// is not REMOVED), or fails with a clear error after `timeout_ms`. `space join` calls it
    /// after recording the space, so that a write right after `join` succeeds. Answers the
    /// role.
    pub async fn space_wait_writable(
        &self,
        space: &str,
        timeout_ms: u64,
    ) -> Result<Role, NodeError> {
        let addr = self.space(space).await?;
        Ok(addr
            .send(WaitAdmitted {
                timeout: Duration::from_millis(timeout_ms),
            })
            .await??)
    }
}
