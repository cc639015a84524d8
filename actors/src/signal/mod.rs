//! Signaling: how peers of a swarm topic find each other's addresses.
//!
//! - [`wire`]: topics, [`PeerInfo`], and the request/event messages.
//! - [`server_core`] / [`client_core`]: the sans-IO state machines, tested without a runtime;
//!   [`peer_merge`] merges the views of several servers.
//! - [`server`]: [`SignalServer`] and [`serve_signal`], what `echo-node signal` runs.
//! - [`client`]: [`SignalClient`], the actor that keeps a node joined at its signal servers
//!   and tells the swarm about peers ([`PeerEvent`]).

pub mod client;
pub mod client_core;
pub mod peer_merge;
pub mod server;
pub mod server_core;
pub mod wire;

#[cfg(test)]
mod client_core_tests;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod server_core_tests;

pub use client::{GetServers, JoinTopic, LeaveTopic, SignalClient, StopClient, CONNECT_TIMEOUT};
pub use client_core::{
    ClientInput, ClientOutput, ConnState, PeerEvent, SignalClientCore, TimerKind,
};
pub use server::{serve_signal, GetStatus, ServerStatus, SignalServer, StopServer};
pub use server_core::{ConnId, ServerInput, ServerOutput, SignalServerCore};
pub use wire::{
    space_topic, PeerInfo, SignalEvent, SignalRequest, Topic, MAX_ADDRS, MAX_TOPICS_PER_CONN,
};
