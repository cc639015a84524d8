//! Read-only invariant checkers: they observe what clients were told and what nodes hold,
//! and report violations; they never take part in the run.
//!
//! - [`durability`]: acknowledged writes survive (single-node model and cluster facts).
//! - [`convergence`]: live members end with identical canonical state.
//! - [`authorization`]: no stored block came from a writer not allowed to write it.
//! - [`verdicts`]: live members end with the same blocks, denied blocks and control state.
//! - [`watch_views`]: an app's view kept from a watch stream ends equal to what its node
//!   holds (objects a rebuild took out included).
//! - [`invitations`]: every `invite accept` ends once, in time, as the invitation allows
//!   (3 wrong codes in all, single use, cancel, expiry), and a SUCCESS is a membership on the
//!   host with the invitation's role and a first write that reaches it.

mod authorization;
pub mod convergence;
mod durability;
pub mod invitations;
pub mod verdicts;
pub mod watch_views;

pub use authorization::AuthorizationChecker;
pub use durability::{AckedFacts, DurabilityModel, Resolution, Write};

/// One broken invariant, with enough context to debug it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub checker: &'static str,
    pub detail: String,
}
