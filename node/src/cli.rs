//! The command line as clap types: every subcommand, flag and argument with its `--help`.
//!
//! Parsing only; nothing here talks to the daemon. Values that clap can check on its own
//! (`--where` clauses, indices) are checked here so that mistakes are usage errors.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use echo_actors::node::WhereEq;

use crate::where_arg::parse_where;

/// What SPACE means, repeated in every command that takes one.
const SPACE_HELP: &str = "The space: its key (hex) or its name, if no other space has that name";

/// echo-node: a headless echo-rs peer.
///
/// `echo-node run` starts the daemon for a data dir; every other command talks to that
/// running daemon through its local API (address and bearer token are read from the data
/// dir).
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
    /// Opens the store in DATA_DIR/store, serves the local API on a loopback address, writes
    /// DATA_DIR/api.json and DATA_DIR/api-token, then prints a line containing `ready`.
    Run(RunArgs),
    /// Create or show this node's identity
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Create and list spaces
    #[command(subcommand)]
    Space(SpaceCommand),
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
    /// Show the device key, the peer listen address and every space with its feed heads
    Status,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Peer (QUIC) listen address; recorded and shown by `status` (peer networking arrives in a later release)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0")]
    pub listen: String,

    /// Local API address; must be a loopback address (port 0 picks a free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub api: String,
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
    },
    /// Show the identity key, device key and name
    Show,
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
}

#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Add an object and print its id
    Add {
        #[arg(help = SPACE_HELP)]
        space: String,
        /// The object as a JSON object, e.g. '{"@type":"Task","title":"Buy milk"}'
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
        /// The merge patch as a JSON object; a null value removes that field
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
    /// Insert TEXT at INDEX (in characters) of a text field and print the text after
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
    /// Delete LEN characters at INDEX of a text field and print the text after
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
    fn where_without_equals_is_a_usage_error() {
        let err = Cli::try_parse_from(["echo-node", "query", "s", "--where", "done"])
            .expect_err("must fail");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
