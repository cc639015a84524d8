//! echo-actors: everything an echo-rs peer is, independent of the runtime that hosts it.
//!
//! Protocol logic lives in sans-IO cores (plain structs: inputs in, outputs out, time and
//! randomness passed in). Each core is owned by a thin actix actor that carries out its
//! outputs. Outside code talks to a peer through [`node::NodeHandle`].
//!
//! Determinism rules (see docs/architecture.md): no wall-clock reads, no OS randomness, no
//! threads in this crate; every clock and RNG is injected; anything that drives output is
//! ordered (`BTreeMap`).

pub mod credentials;
pub mod db;
pub mod feed;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod invitation;
pub mod mesh;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod replication;
pub mod signal;
pub mod space;
pub mod store;
pub mod transport;
pub mod types;
