//! The rule for names people give things: space names and identity display names.
//!
//! A name is shown in lists and typed in commands (`{space}` in API paths is a key or a
//! name), so it must be unambiguous and display as what it is. [`check_name`] refuses:
//! * empty and whitespace-only names, and names with leading or trailing whitespace (the
//!   space resolver trims what it is given, so such a name could never be addressed);
//! * names longer than [`MAX_NAME_CHARS`] characters;
//! * names that are 64 hex characters: they read as a key, and a space named like another
//!   space's key would make that key ambiguous;
//! * control characters (Unicode category Cc: NUL, newline, escape, ...), line and
//!   paragraph separators (U+2028, U+2029) and bidirectional formatting characters (U+061C,
//!   U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which can make a name display as
//!   another one ("Trojan Source").

/// Longest name accepted, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 256;

/// Why a name was refused. Messages name the rule and the offending character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty or only whitespace")]
    Blank,
    #[error("name starts or ends with whitespace; remove it")]
    EdgeWhitespace,
    #[error("name has {0} characters, more than the {MAX_NAME_CHARS} allowed")]
    TooLong(usize),
    #[error("name is 64 hex characters, which reads as a key; choose another name")]
    LooksLikeKey,
    #[error(
        "name contains the character U+{0:04X} (a control, line-separator or bidirectional \
         formatting character), which can hide or disguise text; remove it"
    )]
    BadChar(u32),
}

/// Bidirectional formatting characters: marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks a space name or identity display name against the rule above.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Blank);
    }
    if name.trim() != name {
        return Err(NameError::EdgeWhitespace);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameError::TooLong(chars));
    }
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NameError::LooksLikeKey);
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(NameError::BadChar(u32::from(c)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "notes",
            "My Notes",
            "Zoë's 名前 👋",
            "a",
            &"x".repeat(MAX_NAME_CHARS),
        ] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        // 63 or 65 hex characters, or 64 with a non-hex one, are not keys.
        assert_eq!(check_name(&"a".repeat(63)), Ok(()));
        assert_eq!(check_name(&format!("{}g", "a".repeat(63))), Ok(()));
    }

    #[test]
    fn blank_edge_whitespace_and_long_names_are_refused() {
        for blank in ["", " ", "\t \u{3000}"] {
            assert_eq!(check_name(blank), Err(NameError::Blank), "{blank:?}");
        }
        assert_eq!(check_name(" notes"), Err(NameError::EdgeWhitespace));
        assert_eq!(check_name("notes\n"), Err(NameError::EdgeWhitespace));
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            check_name(&long),
            Err(NameError::TooLong(MAX_NAME_CHARS + 1))
        );
    }

    #[test]
    fn key_like_names_are_refused() {
        assert_eq!(check_name(&"ab".repeat(32)), Err(NameError::LooksLikeKey));
        assert_eq!(check_name(&"AB".repeat(32)), Err(NameError::LooksLikeKey));
    }

    #[test]
    fn control_and_bidi_characters_are_refused() {
        for c in [
            '\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{202A}', '\u{202E}', '\u{2066}',
            '\u{2069}', '\u{200F}', '\u{2028}',
        ] {
            let name = format!("ab{c}cd");
            assert_eq!(
                check_name(&name),
                Err(NameError::BadChar(u32::from(c))),
                "{c:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn names_with_any_cc_character_are_refused(prefix in "[a-z]{1,8}", c in any::<char>().prop_filter("Cc", |c| c.is_control())) {
            prop_assert_eq!(check_name(&format!("{prefix}{c}x")), Err(NameError::BadChar(u32::from(c))));
        }

        #[test]
        fn check_name_never_panics(name in any::<String>()) {
            let _ = check_name(&name);
        }
    }
}
