//! The `device` subcommands of the command line (`cli.rs` holds the rest): inviting a new
//! device into this identity, joining one, listing, naming and revoking devices.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::{parse_lifetime, parse_timeout, InviteAcceptArgs};
use crate::device_name_arg::{parse_device_name, DeviceNameArgs};
use crate::net_args::parse_key;

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Invite a new device (a laptop, a phone) into this identity and print the code
    ///
    /// On the new device, start a node on a fresh data dir and run `device join CODE`; tell
    /// it the auth code over another channel. It becomes a device of this identity, gets
    /// the identity space and every space of the identity, and can write in each at once
    /// (no OWNER has to add it). This node must be running and reachable meanwhile. The
    /// rules are a space invitation's: one use (or --multi-use), 3 wrong codes in all, a
    /// handshake timeout and a lifetime; `invite list` and `invite cancel` show and end it.
    Invite(DeviceInviteArgs),
    /// Join the identity of a device invitation, on a fresh data dir (no identity yet)
    ///
    /// Prints the identity key, this device's key and the spaces joined (with those not
    /// writable yet as pending). State changes go to stderr as they happen; with --json
    /// --progress they are JSON lines on stdout. On a terminal it asks for the auth code of
    /// a `pin` invitation when --auth-code is not given.
    Join {
        #[command(flatten)]
        accept: InviteAcceptArgs,
        #[command(flatten)]
        device_name: DeviceNameArgs,
    },
    /// List the devices of this identity that the spaces of this node know
    ///
    /// One line per device: its key, its name, whether it is revoked, whether it is online
    /// (heard within the presence timeout in some space) and which one is this device.
    List,
    /// Name this device, as `device list` shows it on every device of the identity
    ///
    /// The name is kept on this node and written to the identity space as this device's
    /// profile, which only the identity's devices replicate. A device names only itself.
    Rename {
        /// The new name (not blank, no control characters, at most 256 characters)
        #[arg(value_name = "NAME", value_parser = parse_device_name)]
        name: String,
    },
    /// Revoke a device of this identity (a lost or stolen one), in every space of this node
    ///
    /// From then on every peer of those spaces rejects what that device writes past what
    /// this node held of it, closes its connections, and refuses any device it authorises.
    /// Run it on another device of the identity; a device cannot revoke itself. If every
    /// other device is lost too, recover the identity from its seed phrase on a fresh data
    /// dir (`identity recover`), join the spaces, and revoke from there. Spaces where this
    /// node is not an admitted member yet are skipped and listed.
    Revoke {
        /// The device key to revoke (64 hex characters; see `device list`)
        #[arg(value_name = "DEVICE_KEY", value_parser = parse_key)]
        device_key: String,
    },
}

#[derive(Debug, Args)]
pub struct DeviceInviteArgs {
    /// How the new device proves itself
    #[arg(long, value_enum, default_value_t = DeviceAuth::Pin)]
    pub auth: DeviceAuth,

    /// Keep the invitation open for any number of devices until it expires or is cancelled
    #[arg(long)]
    pub multi_use: bool,

    /// How long one device's handshake may take, e.g. 90s, 3m (1ms to 1d)
    #[arg(long, value_name = "DUR", default_value = "3m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// How long the invitation can be used, e.g. 1h, 7d (1ms to 365d)
    #[arg(long, value_name = "DUR", default_value = "1d", value_parser = parse_lifetime)]
    pub lifetime: Duration,
}

/// How a new device proves it may use a device invitation (`key` needs an identity, which
/// a new device does not have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceAuth {
    /// A 6-digit auth code, printed by `device invite`; tell it to the new device another way
    Pin,
    /// No proof: whoever has the invitation code becomes a device of this identity
    None,
}

impl DeviceAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceAuth::Pin => "pin",
            DeviceAuth::None => "none",
        }
    }
}
