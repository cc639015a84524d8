//! `echo-node`: the headless echo-rs peer. `run` is the daemon, `signal` a standalone
//! signaling server; every other subcommand is a client of the daemon's local API. This file
//! parses the command line, sets up logging, dispatches, and turns errors into a message on
//! stderr and an exit code (see `exit.rs`).

mod api;
mod cli;
mod cli_device;
mod client;
mod clock;
mod commands;
mod daemon;
mod device_name_arg;
mod duration;
mod exit;
mod invite_accept;
mod net_args;
mod output;
mod paths;
mod signal;
mod where_arg;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use paths::DataDir;

fn main() {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Run(_) | Command::Signal(_)));
    match run(cli) {
        Ok(()) => {}
        Err(err) if is_broken_pipe(&err) => {}
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(exit::code_of(&err));
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The signaling server keeps nothing on disk: no data dir needed.
    if let Command::Signal(args) = &cli.command {
        return signal::run(args, cli.json);
    }
    let root = paths::resolve_data_dir(
        cli.data_dir,
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )?;
    let dir = DataDir::new(root);
    match cli.command {
        Command::Run(args) => daemon::run(&dir, &args, cli.json),
        command => commands::execute(&dir, command, cli.json),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG`; the default is `info` for the daemon and
/// `warn` for client commands.
fn init_logging(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Output piped into a reader that went away (`| head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
