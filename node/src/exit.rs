//! Exit codes and the errors that choose them. Anything else that fails exits with 1.
//!
//! 0 success · 1 the command failed (the daemon refused it, I/O, ...) · 2 usage error
//! (including a bad JSON or `--where` argument) · 3 no daemon is running for the data dir.

use std::fmt;

/// Exit code for a command that failed.
pub const FAILURE: i32 = 1;
/// Exit code for a command line that is wrong (the same code clap uses).
pub const USAGE: i32 = 2;
/// Exit code when no daemon answers for the data dir.
pub const NO_DAEMON: i32 = 3;

/// An error that knows its exit code; carried through `anyhow` to `main`.
#[derive(Debug)]
pub struct ExitError {
    pub code: i32,
    pub message: String,
}

impl ExitError {
    pub fn usage(message: impl Into<String>) -> Self {
        ExitError {
            code: USAGE,
            message: message.into(),
        }
    }

    pub fn no_daemon(message: impl Into<String>) -> Self {
        ExitError {
            code: NO_DAEMON,
            message: message.into(),
        }
    }
}

impl fmt::Display for ExitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// The exit code for an error that reached `main`.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<ExitError>().map_or(FAILURE, |e| e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(code_of(&ExitError::usage("x").into()), USAGE);
        assert_eq!(code_of(&ExitError::no_daemon("x").into()), NO_DAEMON);
        assert_eq!(code_of(&anyhow::anyhow!("x")), FAILURE);
    }
}
