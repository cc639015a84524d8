//! Plain data about invitations that [`crate::node::NodeHandle`] returns and takes:
//! serializable, front-end ready (the CLI's `--json` keys and the API's bodies).

use serde::{Deserialize, Serialize};

use super::messages::{AuthMethod, InvitationState};
use crate::credentials::Role;

/// The handshake timeout when none is given: 3 minutes (DXOS's default).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 3 * 60 * 1000;
/// The lifetime of an invitation when none is given: 1 day.
pub const DEFAULT_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// What `invite create` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteOptions {
    /// The role the guest gets (ADMIN, EDITOR or READER; default EDITOR).
    pub role: Role,
    pub auth: AuthMethod,
    /// For `key` auth: the identity key (hex) that must sign the host's challenge.
    pub guest_key: Option<String>,
    /// Stays open for more guests until it expires or is cancelled.
    pub multi_use: bool,
    /// How long one guest's handshake may take.
    pub handshake_timeout_ms: u64,
    /// How long the invitation can be used.
    pub lifetime_ms: u64,
}

impl Default for InviteOptions {
    fn default() -> Self {
        InviteOptions {
            role: Role::Editor,
            auth: AuthMethod::Pin,
            guest_key: None,
            multi_use: false,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            lifetime_ms: DEFAULT_LIFETIME_MS,
        }
    }
}

/// What `invite create` answers. The auth code is shown here only; tell it to the guest
/// over another channel than the invitation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedInvitation {
    pub invitation_code: String,
    /// The 6-digit code, for `pin` auth.
    pub auth_code: Option<String>,
    pub invitation_id: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// One invitation as `invite list` shows it (host side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub invitation_id: String,
    pub space_key: String,
    /// INIT while open, else its terminal state (SUCCESS, CANCELLED, ERROR, EXPIRED).
    pub state: String,
    /// Why it ended, for ERROR (e.g. "too many attempts"); none for SUCCESS, CANCELLED and
    /// EXPIRED, whose state says it all.
    pub reason: Option<String>,
    pub auth: String,
    pub role: String,
    pub multi_use: bool,
    pub attempts_left: u8,
    /// Guests admitted with it so far.
    pub uses: u32,
    /// Milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// What `invite accept` answers on SUCCESS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedInvitation {
    pub space_key: String,
    pub role: String,
}

/// A state change of an `invite accept` as it happens (for progress reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationProgress {
    pub state: InvitationState,
}
