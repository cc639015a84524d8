//! Spaces: `SpaceCore` (control state + object database + causal delivery of blocks),
//! `SpaceActor` (one per space: local mutations, queries, subscriptions), and
//! `SpaceDirectory` (the actor that creates, lists and finds spaces).

mod actor;
mod core;
mod create;
mod directory;
mod load;
mod record;

pub use self::core::{LocalOp, SpaceCore, SpaceError, QUARANTINE_LIMIT};
pub(crate) use actor::parse_id;
pub use actor::{GetObject, Mutate, QueryObjects, SpaceActor, SpaceStatusRequest, TextGet, Watch};
pub use create::{create_space, CreatedSpace};
pub use directory::{CreateSpace, DirectoryStatus, ListSpaces, ResolveSpace, SpaceDirectory};
pub use load::{load_space, LoadedSpace};
pub use record::{FeedRecord, SpaceRecord};

#[cfg(test)]
mod core_tests;
