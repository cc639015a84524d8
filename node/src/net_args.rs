//! Clap value parsers for networking arguments: addresses to bind (`--listen`,
//! `--serve-signal`), addresses to dial (`--peer`, `--signal`) and 32-byte keys in hex
//! (space and identity keys). A bad value is a usage error (exit code 2) whose message says
//! what was expected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`.
fn socket_addr(arg: &str) -> Result<SocketAddr, String> {
    let arg = arg.trim();
    if let Some(port) = arg.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .map_err(|e| format!("`{arg}`: bad port: {e}"));
    }
    arg.parse::<SocketAddr>().map_err(|_| {
        format!("`{arg}` is not an address IP:PORT (e.g. 127.0.0.1:7400, [::1]:7400, 0.0.0.0:0)")
    })
}

/// An address to bind a UDP socket to; port 0 picks a free port.
pub fn parse_bind_addr(arg: &str) -> Result<SocketAddr, String> {
    socket_addr(arg)
}

/// An address of another node or of a signaling server: a concrete IP and a non-zero port.
pub fn parse_dial_addr(arg: &str) -> Result<SocketAddr, String> {
    let addr = socket_addr(arg)?;
    if addr.port() == 0 {
        return Err(format!(
            "`{arg}` has port 0; give the port the other side listens on"
        ));
    }
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(format!(
            "`{arg}` is not an address one can connect to; give the other side's IP \
             (e.g. 127.0.0.1 or 192.168.1.5)"
        ));
    }
    Ok(addr)
}

/// A 32-byte key as 64 hex characters (upper case accepted, printed back lower case).
pub fn parse_key(arg: &str) -> Result<String, String> {
    let key = arg.trim();
    if key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(key.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a key: expected 64 hex characters",
            key.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_addr("0.0.0.0:0"),
            Ok("0.0.0.0:0".parse().expect("addr"))
        );
        assert_eq!(
            parse_bind_addr("localhost:7400"),
            Ok("127.0.0.1:7400".parse().expect("addr"))
        );
        assert_eq!(
            parse_bind_addr("[::1]:1"),
            Ok("[::1]:1".parse().expect("addr"))
        );
        assert!(parse_bind_addr("127.0.0.1").is_err());
        assert!(parse_bind_addr("example.com:80").is_err());
        assert!(parse_bind_addr("127.0.0.1:99999").is_err());
        assert!(parse_bind_addr("").is_err());
    }

    #[test]
    fn dial_addresses_need_a_host_and_a_port() {
        assert_eq!(
            parse_dial_addr("127.0.0.1:7400"),
            Ok("127.0.0.1:7400".parse().expect("addr"))
        );
        let err = parse_dial_addr("127.0.0.1:0").expect_err("port 0");
        assert!(err.contains("port 0"), "{err}");
        let err = parse_dial_addr("0.0.0.0:7400").expect_err("unspecified");
        assert!(err.contains("connect"), "{err}");
        assert!(parse_dial_addr("[::]:7400").is_err());
        assert!(parse_dial_addr("nope").is_err());
    }

    #[test]
    fn keys_are_64_hex_characters() {
        let key = "AB".repeat(32);
        assert_eq!(parse_key(&key), Ok("ab".repeat(32)));
        assert!(parse_key("abc").is_err());
        assert!(parse_key(&"zz".repeat(32)).is_err());
        assert!(parse_key(&"a".repeat(65)).is_err());
    }
}
