//! Read-only invariant checkers: they observe what clients were told and what nodes hold,
//! and report violations; they never take part in the run.

mod durability;

pub use durability::DurabilityModel;

/// One broken invariant, with enough context to debug it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub checker: &'static str,
    pub detail: String,
}
