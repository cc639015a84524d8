//! The invitation code's text form: round trips, one test per error, and proptests that a
//! typo, a transposition or a cut never decodes to another code and that no text panics.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::signal::space_topic;
use crate::types::{KeyError, KeyPair};

const T0: u64 = 1_750_000_000_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn key(n: u8) -> PublicKey {
    KeyPair::from_secret([n; 32]).public()
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(a).into(), port)
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::new(
        Ipv6Addr::new(0x2001, 0xdb8, 0x85a3, 0x12, 0x8a2e, 0x370, 0x7334, 0x9).into(),
        port,
    )
}

/// A code as `invite create` would make it: one LAN address, no signaling server.
fn typical() -> InvitationCode {
    let space_key = key(1);
    InvitationCode {
        kind: InvitationKind::Space,
        invitation_id: [0x5a; 16],
        auth: AuthMethod::Pin,
        topic: space_topic(&space_key),
        space_key,
        created_ms: T0,
        lifetime_ms: DAY_MS,
        host_device: key(2),
        addrs: vec![v4([192, 168, 1, 20], 4433)],
        signal: vec![],
    }
}

/// The smallest code: one-byte varints, no addresses.
fn minimal() -> InvitationCode {
    InvitationCode {
        created_ms: 1,
        lifetime_ms: 1,
        addrs: vec![],
        ..typical()
    }
}

/// The largest code: 16 + 16 IPv6 addresses, the longest varints.
fn maximal() -> InvitationCode {
    InvitationCode {
        created_ms: u64::MAX / 2,
        lifetime_ms: u64::MAX / 2,
        addrs: vec![v6(u16::MAX); MAX_CODE_ADDRS],
        signal: vec![v6(u16::MAX); MAX_CODE_ADDRS],
        ..typical()
    }
}

/// `body` as a code with a valid checksum: what a (buggy or foreign) encoder might write.
fn sealed(body: &[u8]) -> String {
    let mut bytes = body.to_vec();
    bytes.extend_from_slice(&checksum(body));
    format!("{PREFIX}{}", bs58::encode(bytes).into_string())
}

fn body_of(code: &InvitationCode) -> Vec<u8> {
    postcard::to_allocvec(code).unwrap()
}

fn invalid(text: &str) -> String {
    match InvitationCode::decode(text) {
        Err(CodeError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---- round trips and format --------------------------------------------------------------

#[test]
fn typical_code_length() {
    let one = typical().encode();
    let two = InvitationCode {
        addrs: vec![v4([192, 168, 1, 20], 4433), v6(4433)],
        ..typical()
    }
    .encode();
    eprintln!("typical code, 1 address: {} chars: {one}", one.len());
    eprintln!("typical code, 2 addresses: {} chars", two.len());
    assert_eq!(one.len(), 192);
    assert_eq!(two.len(), 218);
    let max = maximal().encode().len();
    eprintln!("largest code: {max} chars");
    assert_eq!(max, 1067);
    // Room left for a pasted code's line breaks and indentation.
    assert!(max * 3 / 2 < MAX_CODE_CHARS);
}

#[test]
fn format_is_prefix_then_base58() {
    assert_eq!(PREFIX, format!("{FAMILY}{VERSION}"));
    let text = typical().encode();
    assert!(text.starts_with(PREFIX));
    assert!(text[PREFIX.len()..].chars().all(|c| BASE58.contains(c)));
    assert_eq!(typical().to_string(), text);
    assert_eq!(text.parse::<InvitationCode>(), Ok(typical()));
}

#[test]
fn minimal_and_maximal_codes_decode() {
    let min = minimal().encode();
    assert_eq!(
        bs58::decode(&min[PREFIX.len()..]).into_vec().unwrap().len(),
        MIN_CODE_BYTES
    );
    assert_eq!(InvitationCode::decode(&min), Ok(minimal()));
    assert_eq!(InvitationCode::decode(&maximal().encode()), Ok(maximal()));
}

#[test]
fn whitespace_anywhere_is_ignored() {
    let text = typical().encode();
    let wrapped: Vec<String> = text
        .as_bytes()
        .chunks(40)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    for pasted in [
        format!("  \t{text}\r\n"),
        wrapped.join("\n"),
        wrapped.join("\r\n   "),
        format!("\n{}\n", wrapped.join(" \t ")),
    ] {
        assert_eq!(InvitationCode::decode(&pasted), Ok(typical()), "{pasted:?}");
    }
}

#[test]
fn the_code_never_carries_the_auth_code() {
    // The auth method is the only thing about authentication in a code; PIN and none codes
    // differ in that one byte.
    let pin = body_of(&typical());
    let none = body_of(&InvitationCode {
        auth: AuthMethod::None,
        ..typical()
    });
    assert_eq!(pin.len(), none.len());
    assert_eq!(pin.iter().zip(&none).filter(|(a, b)| a != b).count(), 1);
}

// ---- one test per error ------------------------------------------------------------------

#[test]
fn empty_text_is_empty() {
    for text in ["", "   ", "\n\t\r\n"] {
        assert_eq!(InvitationCode::decode(text), Err(CodeError::Empty));
    }
}

#[test]
fn text_longer_than_any_code_is_too_long() {
    let text = format!("{PREFIX}{}", "2".repeat(3000));
    assert_eq!(
        InvitationCode::decode(&text),
        Err(CodeError::TooLong {
            length: 3005,
            max: MAX_CODE_CHARS
        })
    );
}

#[test]
fn other_text_is_foreign() {
    let hex_key = key(1).to_hex();
    for text in [
        "hello",
        "https://example.org/invite/abc",
        &hex_key,
        "ECHO1abc",
        "echoes of a code",
        "echo-1abc",
    ] {
        assert_eq!(
            InvitationCode::decode(text),
            Err(CodeError::Foreign),
            "{text}"
        );
    }
}

#[test]
fn another_format_version_is_unsupported() {
    let text = typical().encode().replacen(PREFIX, "echo2", 1);
    assert_eq!(
        InvitationCode::decode(&text),
        Err(CodeError::UnsupportedVersion { version: '2' })
    );
    assert_eq!(
        InvitationCode::decode("echo0"),
        Err(CodeError::UnsupportedVersion { version: '0' })
    );
}

#[test]
fn a_character_outside_base58_is_named_with_its_position() {
    let text = typical().encode();
    for bad in ['0', 'O', 'I', 'l', '-', 'é', '\u{a0}'] {
        let mut chars: Vec<char> = text.chars().collect();
        chars[10] = bad;
        let typo: String = chars.into_iter().collect();
        // Two leading spaces and a line break before it count as characters.
        let pasted = format!("  {}\n{}", &typo[..6], &typo[6..]);
        assert_eq!(
            InvitationCode::decode(&pasted),
            Err(CodeError::NotBase58 {
                position: 2 + 1 + 11,
                character: bad
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn a_cut_prefix_or_missing_body_is_truncated() {
    for text in ["e", "ech", "echo", "echo1", " echo1 \n"] {
        assert_eq!(
            InvitationCode::decode(text),
            Err(CodeError::Truncated),
            "{text}"
        );
    }
    // Too short to hold a checksum.
    assert_eq!(InvitationCode::decode("echo12"), Err(CodeError::Truncated));
    assert_eq!(
        InvitationCode::decode("echo1zzzzz"),
        Err(CodeError::Truncated)
    );
}

#[test]
fn a_code_missing_most_of_its_end_is_truncated() {
    let text = typical().encode();
    assert_eq!(
        InvitationCode::decode(&text[..text.len() - 40]),
        Err(CodeError::Truncated)
    );
}

#[test]
fn a_body_that_ends_early_under_a_valid_checksum_is_truncated() {
    let body = body_of(&typical());
    assert_eq!(
        InvitationCode::decode(&sealed(&body[..body.len() - 1])),
        Err(CodeError::Truncated)
    );
}

#[test]
fn a_checksum_mismatch_is_corrupted() {
    let mut bytes = body_of(&typical());
    let mut sum = checksum(&bytes);
    sum[3] ^= 1;
    bytes.extend_from_slice(&sum);
    let text = format!("{PREFIX}{}", bs58::encode(bytes).into_string());
    assert_eq!(InvitationCode::decode(&text), Err(CodeError::Corrupted));
}

#[test]
fn a_zero_lifetime_is_invalid() {
    let code = InvitationCode {
        lifetime_ms: 0,
        ..typical()
    };
    assert!(invalid(&code.encode()).contains("lifetime is zero"));
}

#[test]
fn an_expiry_past_u64_is_invalid() {
    let code = InvitationCode {
        created_ms: u64::MAX - 5,
        lifetime_ms: 6,
        ..typical()
    };
    assert!(invalid(&code.encode()).contains("expires past the end of time"));
}

#[test]
fn more_than_16_addresses_are_invalid() {
    let many = vec![v4([10, 0, 0, 1], 1); MAX_CODE_ADDRS + 1];
    let code = InvitationCode {
        addrs: many.clone(),
        ..typical()
    };
    assert!(invalid(&code.encode()).contains("17 host addresses, more than 16"));
    let code = InvitationCode {
        signal: many,
        ..typical()
    };
    assert!(invalid(&code.encode()).contains("17 signaling servers, more than 16"));
}

#[test]
fn an_undialable_address_is_invalid() {
    for addr in [v4([0, 0, 0, 0], 4433), v4([10, 0, 0, 1], 0)] {
        let code = InvitationCode {
            addrs: vec![addr],
            ..typical()
        };
        assert!(
            invalid(&code.encode()).contains("cannot be dialed"),
            "{addr}"
        );
    }
}

#[test]
fn a_space_key_or_host_key_that_is_no_valid_point_is_invalid() {
    let not_a_point = (0..=255u8)
        .map(|b| PublicKey::from_bytes([b; 32]))
        .find(|k| k.check_point() == Err(KeyError::BadKey))
        .unwrap();
    let weak = PublicKey::from_bytes([0; 32]);
    for bad in [not_a_point, weak] {
        let code = InvitationCode {
            space_key: bad,
            ..typical()
        };
        assert!(invalid(&code.encode()).contains("space key"));
        let code = InvitationCode {
            host_device: bad,
            ..typical()
        };
        assert!(invalid(&code.encode()).contains("host device key"));
    }
}

#[test]
fn trailing_bytes_are_invalid() {
    let mut body = body_of(&typical());
    body.push(0);
    assert!(invalid(&sealed(&body)).contains("1 bytes follow its fields"));
}

#[test]
fn an_unknown_kind_is_invalid() {
    let mut body = body_of(&typical());
    body[0] = 2;
    assert!(invalid(&sealed(&body)).contains("kind 2"));
}

#[test]
fn a_device_code_round_trips_and_refuses_key_auth() {
    let device = InvitationCode {
        kind: InvitationKind::Device,
        ..typical()
    };
    let text = device.encode();
    assert_eq!(InvitationCode::decode(&text), Ok(device.clone()));
    // The kind is the first body byte: 1 for a device invitation.
    assert_eq!(body_of(&device)[0], 1);
    let keyed = InvitationCode {
        auth: AuthMethod::Key,
        ..device
    };
    assert!(invalid(&keyed.encode()).contains("device invitation with `key` auth"));
}

#[test]
fn fields_that_do_not_decode_are_invalid() {
    let mut body = body_of(&typical());
    body[1 + 16] = 7; // the auth method
    assert!(invalid(&sealed(&body)).contains("do not decode"));
}

#[test]
fn a_non_canonical_encoding_is_invalid() {
    let body = body_of(&InvitationCode {
        created_ms: 5,
        ..typical()
    });
    let at = 1 + 16 + 1 + 32 + 32; // created_ms, one varint byte
    assert_eq!(body[at], 5);
    let mut overlong = body[..at].to_vec();
    overlong.extend_from_slice(&[0x85, 0x00]);
    overlong.extend_from_slice(&body[at + 1..]);
    assert!(invalid(&sealed(&overlong)).contains("not canonically encoded"));
}

#[test]
fn every_message_says_which_way_the_code_is_broken() {
    let cases = [
        (CodeError::Empty, "is empty"),
        (
            CodeError::TooLong {
                length: 3000,
                max: 2048,
            },
            "longer than any invitation code",
        ),
        (CodeError::Foreign, "not an echo-rs invitation code"),
        (
            CodeError::UnsupportedVersion { version: '2' },
            "format `echo2`",
        ),
        (
            CodeError::NotBase58 {
                position: 7,
                character: '0',
            },
            "character 7 of the invitation code, '0'",
        ),
        (CodeError::Truncated, "incomplete"),
        (CodeError::Corrupted, "mistyped or damaged"),
        (CodeError::Invalid("x".into()), "unusable: x"),
    ];
    for (error, phrase) in cases {
        let message = error.to_string();
        assert!(message.contains(phrase), "{message}");
    }
}

// ---- proptests ---------------------------------------------------------------------------

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1..=u16::MAX).prop_map(|(ip, port)| v4(ip, port)),
        (any::<[u8; 16]>(), 1..=u16::MAX).prop_map(|(ip, port)| SocketAddrV6::new(
            ip.into(),
            port,
            0,
            0
        )
        .into()),
    ]
    .prop_filter("dialable", |a| !a.ip().is_unspecified())
}

fn addrs() -> impl Strategy<Value = Vec<SocketAddr>> {
    proptest::collection::vec(socket_addr(), 0..=MAX_CODE_ADDRS)
}

fn code() -> impl Strategy<Value = InvitationCode> {
    let auth = prop_oneof![
        Just(AuthMethod::None),
        Just(AuthMethod::Pin),
        Just(AuthMethod::Key)
    ];
    (
        any::<[u8; 16]>(),
        auth,
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        0..=u64::MAX / 2,
        1..=u64::MAX / 2,
        any::<[u8; 32]>(),
        addrs(),
        addrs(),
    )
        .prop_map(
            |(invitation_id, auth, topic, space, created_ms, lifetime_ms, host, addrs, signal)| {
                InvitationCode {
                    kind: InvitationKind::Space,
                    invitation_id,
                    auth,
                    topic,
                    space_key: KeyPair::from_secret(space).public(),
                    created_ms,
                    lifetime_ms,
                    host_device: KeyPair::from_secret(host).public(),
                    addrs,
                    signal,
                }
            },
        )
}

/// A character to type in place of another: printable ASCII, or a few non-ASCII look-alikes.
fn typed_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (33u8..=126).prop_map(char::from),
        Just('é'),
        Just('Ø'),
        Just('\u{a0}'),
    ]
}

/// `text` with the character at `at` replaced.
fn replaced(text: &str, at: usize, with: char) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| if i == at { with } else { c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(code in code()) {
        let text = code.encode();
        prop_assert!(text.len() <= MAX_CODE_CHARS);
        prop_assert_eq!(InvitationCode::decode(&text), Ok(code.clone()));
        prop_assert_eq!(text.parse::<InvitationCode>(), Ok(code));
    }

    #[test]
    fn round_trip_through_whitespace(
        code in code(),
        breaks in proptest::collection::vec((any::<prop::sample::Index>(), "[ \t\r\n]{1,3}"), 0..6),
    ) {
        let mut text = code.encode();
        for (at, ws) in breaks {
            text.insert_str(at.index(text.len() + 1), &ws);
        }
        prop_assert_eq!(InvitationCode::decode(&text), Ok(code));
    }

    #[test]
    fn a_typo_anywhere_never_decodes(
        code in code(), at in any::<prop::sample::Index>(), with in typed_char(),
    ) {
        let text = code.encode();
        let at = at.index(text.len());
        prop_assume!(text.chars().nth(at) != Some(with));
        let result = InvitationCode::decode(&replaced(&text, at, with));
        if at < PREFIX.len() {
            prop_assert!(
                matches!(result, Err(CodeError::Foreign | CodeError::UnsupportedVersion { .. })),
                "{:?}", result
            );
        } else {
            prop_assert!(
                matches!(result, Err(CodeError::Corrupted | CodeError::NotBase58 { .. })),
                "{:?}", result
            );
        }
    }

    #[test]
    fn a_swap_of_two_neighbours_is_corrupted(code in code(), at in any::<prop::sample::Index>()) {
        let text = code.encode();
        let mut chars: Vec<char> = text.chars().collect();
        let at = PREFIX.len() + at.index(chars.len() - PREFIX.len() - 1);
        prop_assume!(chars[at] != chars[at + 1]);
        chars.swap(at, at + 1);
        let swapped: String = chars.into_iter().collect();
        prop_assert_eq!(InvitationCode::decode(&swapped), Err(CodeError::Corrupted));
    }

    #[test]
    fn a_lost_character_never_decodes(code in code(), at in any::<prop::sample::Index>()) {
        let mut text = code.encode();
        let at = PREFIX.len() + at.index(text.len() - PREFIX.len());
        text.remove(at);
        let result = InvitationCode::decode(&text);
        prop_assert!(
            matches!(result, Err(CodeError::Corrupted | CodeError::Truncated)),
            "{:?}", result
        );
    }

    #[test]
    fn a_cut_code_is_truncated_or_corrupted(code in code(), keep in any::<prop::sample::Index>()) {
        let text = code.encode();
        let keep = 1 + keep.index(text.len() - 1);
        let result = InvitationCode::decode(&text[..keep]);
        prop_assert!(
            matches!(result, Err(CodeError::Corrupted | CodeError::Truncated)),
            "{} chars: {:?}", keep, result
        );
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = InvitationCode::decode(&text);
        let _ = InvitationCode::decode(&format!("{PREFIX}{text}"));
    }

    #[test]
    fn base58_after_the_prefix_never_panics(text in "echo1[1-9A-HJ-NP-Za-km-z]{0,400}") {
        if let Ok(code) = InvitationCode::decode(&text) {
            prop_assert_eq!(code.encode(), text);
        }
    }

    /// Bytes that pass the checksum reach the field decoder: any of them is an error or a
    /// code that encodes back to the same text.
    #[test]
    fn any_sealed_body_is_an_error_or_canonical(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        real in code(),
        cut in any::<prop::sample::Index>(),
    ) {
        for body in [body, body_of(&real)[..cut.index(body_of(&real).len() + 1)].to_vec()] {
            let text = sealed(&body);
            if let Ok(code) = InvitationCode::decode(&text) {
                prop_assert_eq!(code.encode(), text);
            }
        }
    }
}

#[test]
fn every_cut_of_fixed_codes_is_truncated_or_corrupted() {
    for code in [typical(), minimal(), maximal()] {
        let text = code.encode();
        assert_eq!(InvitationCode::decode(&text[..0]), Err(CodeError::Empty));
        for keep in 1..text.len() {
            let result = InvitationCode::decode(&text[..keep]);
            assert!(
                matches!(result, Err(CodeError::Truncated | CodeError::Corrupted)),
                "{keep} of {} chars: {result:?}",
                text.len()
            );
        }
    }
}
