//! The command line as clap types: every subcommand, flag and argument with its `--help`.
//!
//! Parsing only; nothing here talks to the daemon. Values that clap can check on its own
//! (`--where` clauses, indices) are checked here so that mistakes are usage errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use echo_actors::credentials::Role;
use echo_actors::invitation::AuthMethod;
use echo_actors::node::WhereEq;

use crate::api;
use crate::device_name_arg::DeviceNameArgs;
use crate::duration::parse_duration;
use crate::net_args::{parse_bind_addr, parse_dial_addr, parse_key};
use crate::where_arg::parse_where;

pub use crate::cli_device::DeviceCommand;

/// What SPACE means, repeated in every command that takes one.
const SPACE_HELP: &str = "The space: its key (hex) or its name, if no other space has that name";

/// echo-node: a headless echo-rs peer.
///
/// `echo-node run` starts the daemon for a data dir; it replicates its spaces with other
/// nodes over QUIC. `echo-node signal` runs a standalone signaling server. Every other
/// command talks to the running daemon through its local API (address and bearer token are
/// read from the data dir).
#[derive(Debug, Parser)]
#[command(
    name = "echo-node",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 success, 1 the command failed, 2 usage error (including bad JSON \
                  arguments), 3 no daemon is running for the data dir. See docs/cli.md."
)]
pub struct Cli {
    /// Data directory of the node [default: $XDG_DATA_HOME/echo-rs or ~/.local/share/echo-rs]
    #[arg(long, global = true, env = "ECHO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable output: one JSON document per command, JSON lines for streams
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (stop it with Ctrl-C or SIGTERM)
    ///
    /// Opens the store in DATA_DIR/store, listens for peers on QUIC (--listen), connects to
    /// static peers (--peer) and finds more through signaling servers (--signal), serves the
    /// local API on a loopback address, writes DATA_DIR/api.json and DATA_DIR/api-token, then
    /// prints a line containing `ready` and the peer listen address.
    Run(RunArgs),
    /// Run a standalone signaling server in the foreground (stop it with Ctrl-C or SIGTERM)
    ///
    /// Nodes started with `run --signal ADDR` register the spaces they are in here and learn
    /// each other's addresses. Needs no data dir and no identity. Prints a line containing
    /// `ready` and the bound address.
    Signal(SignalArgs),
    /// Create or show this node's identity
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// List this identity's devices and revoke a lost one
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Create, list and join spaces; add, list, change and remove members
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Invite others to a space, accept an invitation, list and cancel invitations
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Add, read, update and delete objects
    #[command(subcommand)]
    Object(ObjectCommand),
    /// List the objects of a space that match a filter
    Query(QueryArgs),
    /// Edit and read collaborative text fields
    #[command(subcommand)]
    Text(TextCommand),
    /// Print every change to the objects of a space until interrupted
    ///
    /// One line per change (with --json: one ChangeEvent JSON object per line, with space_key,
    /// id, kind = added|updated|deleted, and the object after the change). Once subscribed it
    /// says `watching space ...` on stderr; changes made before that are not shown.
    Watch(WatchArgs),
    /// Show the device key, the peer listen address and every space with its feed heads and
    /// connected peers
    Status,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Peer (QUIC) listen address, IP:PORT (port 0 picks a free port; `status` shows the
    /// bound one)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0", value_parser = parse_bind_addr)]
    pub listen: SocketAddr,

    /// Local API address; must be a loopback address (port 0 picks a free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub api: String,

    /// Signaling server to register with and find peers through, IP:PORT; repeat for several
    #[arg(long = "signal", value_name = "ADDR", value_parser = parse_dial_addr)]
    pub signal: Vec<SocketAddr>,

    /// Peer to keep connected to whatever the space (reconnected with backoff), IP:PORT;
    /// repeat for several
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_dial_addr)]
    pub peer: Vec<SocketAddr>,

    /// Also run a signaling server on its own QUIC endpoint at ADDR; this node registers
    /// with it too, so other nodes only need `--signal` pointing here
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    pub serve_signal: Option<SocketAddr>,

    /// IP that other machines reach this node at, put in invitation codes; repeat for
    /// several [default with a wildcard --listen: the IP of the interface that routes to the
    /// internet, if any, then loopback]
    #[arg(long = "advertise", value_name = "IP")]
    pub advertise: Vec<std::net::IpAddr>,

    /// Most connections this node starts per space (to peers found through signaling)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_originated: u16,

    /// Most incoming connections this node accepts in all
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_accepted: u16,

    /// Do not listen under the identity topics of this node's spaces' members at the
    /// signaling servers (docs/identity.md, Recovery). Listening lets a member whose devices
    /// are all lost, recovering with signaling only, find this node; it also lets anyone who
    /// knows a member's identity key and reaches the server learn this node's device key and
    /// address
    #[arg(long)]
    pub no_identity_topics: bool,

    /// Most watch streams the local API serves at once; past it a watch is refused (503)
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_watches: u16,

    /// Milliseconds a Yjs client's quick successive edits (typing) may wait to share one
    /// signed block and one flush: an edit arriving within this long of the last commit is
    /// held until the window ends. 0 turns it off; API writes are never held
    #[arg(long, value_name = "MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=200))]
    pub coalesce_ms: u64,

    /// Milliseconds between heartbeat lines on an idle watch stream (for tests; see
    /// docs/api.md)
    #[arg(long, value_name = "MS", default_value_t = 5000, hide = true, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub watch_heartbeat_ms: u64,

    /// Milliseconds between two presence announcements in each space (for tests; see
    /// docs/presence.md)
    #[arg(long, value_name = "MS", default_value_t = 10_000, hide = true, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub presence_interval_ms: u64,

    /// Milliseconds of silence after which a peer's device counts as offline (for tests;
    /// see docs/presence.md)
    #[arg(long, value_name = "MS", default_value_t = 20_000, hide = true, value_parser = clap::value_parser!(u64).range(10..=86_400_000))]
    pub presence_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// Address to listen on, IP:PORT (port 0 picks a free port; the ready line shows it)
    #[arg(long, value_name = "ADDR", value_parser = parse_bind_addr)]
    pub listen: SocketAddr,
}

/// The roles `space add-member` can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MemberRole {
    /// May write and add or change members
    Admin,
    /// May write objects
    Editor,
    /// May only read
    Reader,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        Role::from(self).as_str()
    }
}

impl From<MemberRole> for Role {
    fn from(role: MemberRole) -> Role {
        match role {
            MemberRole::Admin => Role::Admin,
            MemberRole::Editor => Role::Editor,
            MemberRole::Reader => Role::Reader,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create the identity of this node and print its seed phrase
    ///
    /// The seed phrase is shown only this once: write it down and keep it safe.
    Create {
        /// Display name of the identity
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        device_name: DeviceNameArgs,
    },
    /// Recover an identity from its seed phrase on this node (a fresh data dir)
    ///
    /// This node gets the identity of the phrase (the same identity key) and keeps its own
    /// new device key, which the identity key authorises: the key is derived from the phrase
    /// for that one signature and then wiped; neither it nor the phrase is ever written to
    /// disk or to the logs. Refused on a data dir that already has an identity. The
    /// identity's spaces come back once this node reaches another device of the identity
    /// (with `run --peer` or signaling): its identity space lists them, and this node joins
    /// each.
    Recover {
        /// The 24 words `identity create` showed (quoted or not); `-` reads them from stdin
        /// (which keeps them out of the process list and the shell history)
        #[arg(long, value_name = "WORDS", num_args = 1.., required = true, value_parser = parse_seed_phrase)]
        seed_phrase: Vec<SeedPhrase>,
        /// Display name of the identity on this device
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        device_name: DeviceNameArgs,
    },
    /// Show the identity key, device key and name
    Show,
}

/// A `--seed-phrase` value. Its `Debug` never shows the words.
#[derive(Clone, PartialEq, Eq)]
pub enum SeedPhrase {
    Words(String),
    /// `-`: read one line from stdin.
    Stdin,
}

impl std::fmt::Debug for SeedPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedPhrase::Words(_) => f.write_str("SeedPhrase(<hidden>)"),
            SeedPhrase::Stdin => f.write_str("SeedPhrase(-)"),
        }
    }
}

fn parse_seed_phrase(text: &str) -> Result<SeedPhrase, String> {
    Ok(if text.trim() == "-" {
        SeedPhrase::Stdin
    } else {
        SeedPhrase::Words(text.to_string())
    })
}

#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Create a space owned by this identity and print its key
    Create {
        /// Name of the space (other commands accept it in place of the key)
        #[arg(long)]
        name: Option<String>,
    },
    /// List the spaces of this node
    List,
    /// Make an identity a member of a space (or change its role); OWNER or ADMIN only
    ///
    /// Prints the member. The new member's node then runs `space join` with the space key.
    AddMember {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// The new member's identity key (64 hex characters; see `identity show` on its node)
        #[arg(value_name = "IDENTITY_KEY", value_parser = parse_key)]
        identity_key: String,
        /// The member's role
        #[arg(long, value_enum, default_value_t = MemberRole::Editor)]
        role: MemberRole,
    },
    /// Change the role of a member of a space; OWNER or ADMIN only
    ///
    /// Prints the member. The OWNER's role cannot be changed, and nobody can be made OWNER.
    SetRole {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// The member's identity key (64 hex characters; see `space members`)
        #[arg(value_name = "IDENTITY_KEY", value_parser = parse_key)]
        identity_key: String,
        /// The new role
        #[arg(value_enum)]
        role: MemberRole,
    },
    /// Remove a member from a space; OWNER or ADMIN only
    ///
    /// The member's role becomes `removed`: its later writes are not applied and its
    /// replication channels for the space are closed. The OWNER cannot be removed.
    RemoveMember {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// The member's identity key (64 hex characters; see `space members`)
        #[arg(value_name = "IDENTITY_KEY", value_parser = parse_key)]
        identity_key: String,
    },
    /// Join a space that a member added this node's identity to, and wait until this node
    /// may write in it
    ///
    /// The node finds peers of the space (static peers, signaling), receives its history and
    /// gets its feeds admitted. The command returns once writes are accepted; after --timeout
    /// it fails (exit code 1), but the node keeps the space and keeps trying: run `space join`
    /// again to wait again.
    Join {
        /// The space key (64 hex characters)
        #[arg(value_name = "SPACE_KEY", value_parser = parse_key)]
        space_key: String,
        /// A local name for the space (other commands accept it in place of the key)
        #[arg(long)]
        name: Option<String>,
        /// How long to wait until this node may write, e.g. 30s, 2m (1ms to 1d)
        #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// List the members of a space and their roles
    Members {
        #[arg(help = SPACE_HELP)]
        space: String,
    },
    /// Show what this node decided about the space's blocks
    ///
    /// Feed lengths, the blocks it keeps but never applied (their writer was not allowed to
    /// write them in the block's causal past, e.g. after its demotion) with the reason, and
    /// the members and feeds derived from the accepted credentials. Honest peers that hold
    /// the same blocks show the same verdicts.
    Verdicts {
        #[arg(help = SPACE_HELP)]
        space: String,
    },
}

/// How the guest of an invitation proves itself (`invite create --auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InviteAuth {
    /// A 6-digit auth code, printed by `invite create`; tell it to the guest another way
    Pin,
    /// No proof: anyone who has the invitation code may join
    None,
    /// A device of the identity given as --guest-key signs a challenge (and shows that the
    /// identity authorised it)
    Key,
}

impl InviteAuth {
    pub fn as_str(self) -> &'static str {
        AuthMethod::from(self).name()
    }
}

impl From<InviteAuth> for AuthMethod {
    fn from(auth: InviteAuth) -> AuthMethod {
        match auth {
            InviteAuth::Pin => AuthMethod::Pin,
            InviteAuth::None => AuthMethod::None,
            InviteAuth::Key => AuthMethod::Key,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create an invitation to a space (OWNER or ADMIN only) and print its code
    ///
    /// Give the guest the invitation code, and tell it the auth code over another channel;
    /// the guest runs `invite accept CODE`. This node must be running and reachable (through
    /// the signaling servers or peers both nodes use) while the guest accepts. An invitation
    /// serves one guest (or, with --multi-use, any number until it expires) and ends after
    /// 3 wrong auth codes in all.
    Create(InviteCreateArgs),
    /// Accept an invitation: join its space and wait until this node may write in it
    ///
    /// Prints the space key and the role. State changes go to stderr as they happen
    /// (CONNECTING, CONNECTED, READY_FOR_AUTHENTICATION, AUTHENTICATING, SUCCESS); with
    /// --json --progress they are JSON lines on stdout. On a terminal it asks for the auth
    /// code of a `pin` invitation when --auth-code is not given.
    Accept(InviteAcceptArgs),
    /// List the invitations this node hosts, with their state
    List {
        /// Only the invitations to this space (its key, or its name if no other space has it)
        #[arg(value_name = "SPACE")]
        space: Option<String>,
    },
    /// Cancel an invitation this node hosts; a guest in the middle of accepting it gets
    /// CANCELLED
    Cancel {
        /// The invitation id, as `invite create` or `invite list` print it
        #[arg(value_name = "INVITATION_ID")]
        invitation_id: String,
    },
}

#[derive(Debug, Args)]
pub struct InviteCreateArgs {
    #[arg(help = SPACE_HELP)]
    pub space: String,

    /// The role the guest gets
    #[arg(long, value_enum, default_value_t = MemberRole::Editor)]
    pub role: MemberRole,

    /// How the guest proves itself (`key` needs --guest-key)
    #[arg(long, value_enum, default_value_t = InviteAuth::Pin)]
    pub auth: InviteAuth,

    /// For --auth key: the identity key of the only guest that may use the invitation
    /// (64 hex characters; `identity show` on its node)
    #[arg(long, value_name = "IDENTITY_KEY", value_parser = parse_key)]
    pub guest_key: Option<String>,

    /// Keep the invitation open for any number of guests until it expires or is cancelled
    #[arg(long)]
    pub multi_use: bool,

    /// How long one guest's handshake may take, e.g. 90s, 3m (1ms to 1d)
    #[arg(long, value_name = "DUR", default_value = "3m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// How long the invitation can be used, e.g. 1h, 7d (1ms to 365d)
    #[arg(long, value_name = "DUR", default_value = "1d", value_parser = parse_lifetime)]
    pub lifetime: Duration,
}

#[derive(Debug, Args)]
pub struct InviteAcceptArgs {
    /// The invitation code, as `invite create` printed it on the host
    #[arg(value_name = "CODE")]
    pub code: String,

    /// The 6-digit auth code the host told you (for a `pin` invitation); asked for on a
    /// terminal when not given
    #[arg(long, value_name = "DIGITS", value_parser = parse_auth_code)]
    pub auth_code: Option<String>,

    /// How long the whole handshake may take, until this node may write, e.g. 3m (1ms to 1d)
    #[arg(long, value_name = "DUR", default_value = "3m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// With --json: print every state change as a JSON line (the last one is the outcome)
    #[arg(long)]
    pub progress: bool,
}

/// A duration from 1 ms to `max_ms` (the API's bounds), so that a value the daemon would
/// refuse is a usage error.
fn bounded_duration(arg: &str, max_ms: u64, max_text: &str) -> Result<Duration, String> {
    let d = parse_duration(arg)?;
    if d < Duration::from_millis(1) || d > Duration::from_millis(max_ms) {
        return Err(format!("`{arg}` is out of range: give 1ms to {max_text}"));
    }
    Ok(d)
}

/// `--timeout DUR`: 1 ms to 1 day.
pub fn parse_timeout(arg: &str) -> Result<Duration, String> {
    bounded_duration(arg, api::MAX_TIMEOUT_MS, "1d")
}

/// `--lifetime DUR`: 1 ms to 365 days.
pub fn parse_lifetime(arg: &str) -> Result<Duration, String> {
    bounded_duration(arg, api::MAX_LIFETIME_MS, "365d")
}

/// An auth code: exactly 6 ASCII digits.
pub fn parse_auth_code(arg: &str) -> Result<String, String> {
    let code = arg.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_string())
    } else {
        Err(format!(
            "`{}` is not an auth code: expected exactly 6 digits, e.g. 042917",
            code.chars().take(40).collect::<String>()
        ))
    }
}

#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Add an object and print its id
    Add {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// The object as a JSON object, e.g. '{"@type":"Task","title":"Buy milk"}', or
        /// @FILE to read it from a file
        #[arg(value_name = "JSON")]
        object: String,
    },
    /// Print an object (with its @id, @type and @meta)
    Get {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
    },
    /// Apply a JSON merge patch (RFC 7386) to an object and print the result
    Update {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
        /// The merge patch as a JSON object (or @FILE); a null value removes that field
        #[arg(value_name = "JSON")]
        patch: String,
    },
    /// Delete an object (soft: `query --include-deleted` and `object get` still see it)
    Delete {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(help = SPACE_HELP)]
    pub space: String,

    /// Only objects whose @type is T
    #[arg(long = "type", value_name = "T")]
    pub type_name: Option<String>,

    /// Only objects where the field at PATH (dotted, e.g. address.city) equals VALUE; repeat
    /// to require several. VALUE is read as JSON if it parses (n=3, done=true, x=null,
    /// name="Ada"), otherwise as a plain string (name=Ada)
    #[arg(long = "where", value_name = "PATH=VALUE", value_parser = parse_where)]
    pub where_eq: Vec<WhereEq>,

    /// Include soft-deleted objects
    #[arg(long)]
    pub include_deleted: bool,
}

#[derive(Debug, Subcommand)]
pub enum TextCommand {
    /// Insert TEXT at INDEX (in characters) of a text field; prints the change and the new
    /// length (`text get` prints the text)
    Insert {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
        /// Text field name
        field: String,
        /// Position in characters, 0 = start
        index: u32,
        /// Text to insert
        text: String,
    },
    /// Delete LEN characters at INDEX of a text field; prints the change and the new length
    Delete {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
        /// Text field name
        field: String,
        /// Position in characters, 0 = start
        index: u32,
        /// Number of characters to delete
        len: u32,
    },
    /// Print the content of a text field
    Get {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// Object id
        id: String,
        /// Text field name
        field: String,
    },
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[arg(help = SPACE_HELP)]
    pub space: String,

    /// Only changes to objects whose @type is T
    #[arg(long = "type", value_name = "T")]
    pub type_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["echo-node", "space", "list", "--json", "--data-dir", "/x"])
            .expect("parses");
        assert!(cli.json);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/x")));
    }

    #[test]
    fn network_arguments_are_checked() {
        let cli = Cli::try_parse_from([
            "echo-node",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:7401",
            "--peer",
            "localhost:7402",
            "--signal",
            "127.0.0.1:7400",
            "--max-accepted",
            "3",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.peer.len(), 2);
        assert_eq!(args.signal.len(), 1);
        assert_eq!((args.max_originated, args.max_accepted), (4, 3));
        for bad in [
            ["--listen", "nowhere"],
            ["--peer", "127.0.0.1:0"],
            ["--peer", "0.0.0.0:7400"],
            ["--signal", "x:1"],
            ["--serve-signal", "1.2.3.4"],
            ["--max-originated", "0"],
        ] {
            let err =
                Cli::try_parse_from(["echo-node", "run", bad[0], bad[1]]).expect_err("must fail");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
        let err = Cli::try_parse_from(["echo-node", "signal"]).expect_err("needs --listen");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn member_commands() {
        let key = "ab".repeat(32);
        let cli =
            Cli::try_parse_from(["echo-node", "space", "add-member", "s", &key]).expect("parses");
        let Command::Space(SpaceCommand::AddMember { role, .. }) = cli.command else {
            panic!("not add-member")
        };
        assert_eq!(role, MemberRole::Editor);
        for role in ["owner", "removed"] {
            assert!(Cli::try_parse_from([
                "echo-node",
                "space",
                "add-member",
                "s",
                &key,
                "--role",
                role
            ])
            .is_err());
        }
        let err = Cli::try_parse_from(["echo-node", "space", "join", "abc"]).expect_err("bad key");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn invitation_arguments_are_checked() {
        let parse = |args: &[&str]| Cli::try_parse_from(["echo-node"].iter().chain(args).copied());
        let cli = parse(&["invite", "create", "s"]).expect("parses");
        let Command::Invite(InviteCommand::Create(args)) = cli.command else {
            panic!("not invite create")
        };
        assert_eq!(
            (args.role, args.auth),
            (MemberRole::Editor, InviteAuth::Pin)
        );
        assert_eq!(args.timeout, Duration::from_secs(180));
        assert_eq!(args.lifetime, Duration::from_secs(86_400));
        for bad in [
            &["invite", "create", "s", "--role", "owner"][..],
            &["invite", "create", "s", "--auth", "password"],
            &[
                "invite",
                "create",
                "s",
                "--guest-key",
                "abc",
                "--auth",
                "key",
            ],
            &["invite", "create", "s", "--timeout", "soon"],
            &["invite", "create", "s", "--timeout", "0s"],
            &["invite", "create", "s", "--timeout", "2d"],
            &["invite", "create", "s", "--lifetime", "366d"],
            &["invite", "accept", "C", "--auth-code", "12345"],
            &["invite", "accept", "C", "--timeout=-1s"],
            &["space", "join", &"ab".repeat(32), "--timeout", "forever"],
            &["space", "set-role", "s", &"ab".repeat(32), "owner"],
            &["space", "remove-member", "s", "xyz"],
        ] {
            let err = parse(bad).expect_err("must fail");
            assert!(
                matches!(
                    err.kind(),
                    clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue
                ),
                "{bad:?}: {err}"
            );
            assert_eq!(err.exit_code(), crate::exit::USAGE, "{bad:?}");
        }
        let err = parse(&["space", "set-role", "s", &"ab".repeat(32)]).expect_err("no role");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(parse(&["invite", "create", "s", "--lifetime", "365d"]).is_ok());
    }

    #[test]
    fn where_without_equals_is_a_usage_error() {
        let err = Cli::try_parse_from(["echo-node", "query", "s", "--where", "done"])
            .expect_err("must fail");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
