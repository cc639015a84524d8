//! `--device-name NAME`: the name a device gives itself when it takes on an identity
//! (`identity create`, `identity recover`, `device join`) and with `device rename`.
//!
//! The name is checked here as the node checks every display name, so that a bad one is a
//! usage error. When none is given, the CLI names the device after its host (the kernel's
//! host name), which is what a user tells laptops apart by; a host name that is not a
//! valid display name gives no name. The default lives at this edge only: the API and the
//! node never guess a name.

use clap::Args;
use echo_actors::types::check_name;

/// Where Linux keeps the host name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// `--device-name`, for the commands where a device takes on an identity.
#[derive(Debug, Clone, Args)]
pub struct DeviceNameArgs {
    /// This device's name, which `device list` shows on every device of the identity
    /// (only the identity's own devices see it) [default: this host's name]
    #[arg(long, value_name = "NAME", value_parser = parse_device_name)]
    pub device_name: Option<String>,
}

impl DeviceNameArgs {
    /// The name given, or else this host's name (if it is a valid display name).
    pub fn or_host_name(&self) -> Option<String> {
        self.device_name
            .clone()
            .or_else(|| host_name(std::fs::read_to_string(HOSTNAME_FILE).ok()?.as_str()))
    }
}

/// A device name: a display name (not blank, no control characters, at most 256 characters, ...).
pub fn parse_device_name(arg: &str) -> Result<String, String> {
    check_name(arg).map_err(|e| format!("`{arg}` is not a device name: {e}"))?;
    Ok(arg.to_string())
}

/// The host name as the kernel file holds it, if it is a valid display name.
fn host_name(file: &str) -> Option<String> {
    let name = file.trim();
    check_name(name).ok().map(|()| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_display_names() {
        assert_eq!(parse_device_name("Bob's phone"), Ok("Bob's phone".into()));
        for bad in ["", " phone", "a\u{7}b", &"x".repeat(300)] {
            assert!(parse_device_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_host_name_is_used_only_when_it_is_a_valid_name() {
        assert_eq!(host_name("laptop\n"), Some("laptop".into()));
        assert_eq!(host_name("\n"), None);
        assert_eq!(host_name(&"h".repeat(300)), None);
    }

    #[test]
    fn a_given_name_beats_the_host_name() {
        let given = DeviceNameArgs {
            device_name: Some("phone".into()),
        };
        assert_eq!(given.or_host_name(), Some("phone".into()));
    }
}
