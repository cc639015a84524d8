//! Spaces: `SpaceCore` (control state + object database + causal delivery of blocks),
//! `SpaceActor` (one per space: local mutations, queries, subscriptions), and
//! `SpaceDirectory` (the actor that creates, lists and finds spaces).

mod actor;
mod bridge;
mod commit;
mod core;
mod create;
mod devices;
mod directory;
mod directory_halo;
mod halo;
mod info;
mod load;
mod members;
mod presence;
mod rebuild;
mod record;
mod relay;
mod remote;
mod request_error;

pub use self::core::{LocalOp, Plan, SpaceCore, SpaceError, Verdict, QUARANTINE_LIMIT};
pub(crate) use actor::parse_id;
pub use actor::{GetObject, Mutate, QueryObjects, SpaceActor, SpaceStatusRequest, TextGet, Watch};
pub use bridge::{
    BridgeEvent, Durable, YjsApply, YjsDiff, YjsSubscribe, YjsSubscription, YJS_CAPACITY,
};
pub use commit::{DEFAULT_COALESCE, MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_COALESCE};
pub use create::{create_space, found_halo, halo_writes, join_space, CreatedSpace};
pub use devices::{NameOurDevice, OurDeviceNames, OurDevices, RevokeOurDevice, Revoked};
pub use directory::{
    CreateSpace, DirectoryStatus, JoinSpace, ListSpaces, ResolveSpace, SpaceDirectory, SpaceOpened,
    WatchSpaces,
};
pub use directory_halo::{AllSpaces, HaloSpace, JoinListed, OpenHaloSpace, SpacesOfIdentity};
pub use halo::{listed_spaces, listing, listing_query, LISTING_TYPE};
pub use info::{
    ChangeEvent, ChangeKind, FeedStatus, MemberInfo, OnlineDevice, PeerStatus, QueryRequest,
    SpaceInfo, SpaceStatus, SpaceVerdicts, WhereEq,
};
pub use load::{load_space, LoadedSpace, Replayed};
pub use members::{AddMember, AdmitMember, EnsureAdmitted, MayInvite, OwnFeeds, WaitAdmitted};
pub use presence::{
    OnlineDevices, OnlineIdentities, PresenceIn, PresenceJoin, PresenceLeave, PresenceOut,
};
pub use record::{FeedRecord, SpaceRecord};
pub use relay::{to_relay, ForeignRevocations, RelayRevocations};
pub use remote::{
    verdicts_of, AuthorizePeer, CredentialsPast, GetHeads, GetVerdicts, HeadsChanged, IngestBlocks,
    IngestReport, KnowsDevice, ListMembers, MayOpenTo, MemberOf, PeerRefused, ReadBlocks,
    WatchHeads,
};
pub use request_error::SpaceRequestError;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod halo_genesis_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
mod verdict_tests;
