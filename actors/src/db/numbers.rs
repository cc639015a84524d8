//! Exact numbers: a number is stored exactly as written, or refused; never changed silently.
//!
//! Contract (documented in `docs/api.md`, "Numbers"):
//! * Integers from `i64::MIN` to `i64::MAX` are stored exactly (yrs' `Number::Int`; on the
//!   wire yrs may carry them as doubles or as a 64-bit BigInt, and rendering turns them back
//!   into the same integers on every peer, see `convert`).
//! * An integer written without fraction or exponent beyond that range is refused, even if
//!   a double would print as the same decimal (`10^99` would come back as `1e+99`, a float).
//! * Every other number is stored as an IEEE 754 double and is accepted only if it reads
//!   back as the same decimal value it was written as: `0.1`, `1.5e300` and
//!   `1.8446744073709552e19` are accepted; `18446744073709551615` (beyond `i64`),
//!   `0.10000000000000000001` (more precision than a double has), `1e-400` (underflows to 0)
//!   and a 100-digit integer are refused. `1e400` does not even parse (serde_json refuses
//!   numbers beyond the double range).
//! * Two checks implement it. [`check_number`] works on a parsed `serde_json::Number` (every
//!   add, patch and query value goes through it) and refuses what the parsed value itself
//!   would change into: integers beyond `i64`, and the double 2^63 (it renders as `i64::MAX`).
//!   But serde_json (without `arbitrary_precision`) already rounds long integers and long
//!   decimals while parsing, so [`check_json_numbers`] also reads the number tokens of the
//!   raw JSON text: front ends (the HTTP API, the CLI) call it on the text they parsed.
//!   Both name the offending value and its path.
//!
//! The `arbitrary_precision` feature of serde_json was not used: it changes `Number`
//! for the whole workspace (feature unification), including `Value` equality (numbers would
//! compare as strings) and serde's representation of numbers in every other format.

use serde_json::{Number, Value};

use super::convert::canonical_json;
use super::id::shorten;
use super::DbError;

/// The supported range, for messages.
const RANGE: &str = "integers must be between -9223372036854775808 and 9223372036854775807 \
                     (i64), other numbers must be doubles (f64) that read back as written \
                     (at most 17 significant digits); send the value as a string to keep \
                     every digit";

fn refused(number: &str, path: &str, stored: &str) -> DbError {
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at `{}`", shorten(path))
    };
    let number = if number.len() > 40 {
        format!("{} ({} characters)", shorten(number), number.len())
    } else {
        number.to_owned()
    };
    DbError::Invalid(format!(
        "number {number}{at} cannot be stored exactly (it would read back as {stored}): {RANGE}"
    ))
}

/// Checks that a parsed number is stored as exactly this number. `path` names it (dotted).
pub(crate) fn check_number(n: &Number, path: &str) -> Result<(), DbError> {
    let stored = canonical_json(&Value::Number(n.clone()));
    let exact = match &stored {
        Value::Number(s) => same_value(n, s),
        _ => false,
    };
    if exact {
        Ok(())
    } else {
        Err(refused(&n.to_string(), path, &stored.to_string()))
    }
}

/// Checks that every number in `value` (at dotted `path`) is one the object model stores
/// exactly, e.g. a query value, which could otherwise never match or match a rounded value.
/// Iterative: a hostile Rust caller's deep value cannot overflow the stack.
pub fn check_numbers(value: &Value, path: &str) -> Result<(), DbError> {
    let mut todo: Vec<(&Value, String)> = vec![(value, path.to_owned())];
    while let Some((value, path)) = todo.pop() {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        match value {
            Value::Number(n) => check_number(n, &path)?,
            Value::Array(items) => todo.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v, join(&i.to_string()))),
            ),
            Value::Object(fields) => todo.extend(fields.iter().map(|(k, v)| (v, join(k)))),
            _ => {}
        }
    }
    Ok(())
}

/// Exact numeric equality of two parsed numbers (no rounding of integers to doubles).
fn same_value(a: &Number, b: &Number) -> bool {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(i), None) | (None, Some(i)) => {
            let f = if int(a).is_some() { b } else { a }.as_f64();
            // Every integral double below 2^127 converts to i128 exactly.
            f.is_some_and(|f| f.fract() == 0.0 && f.abs() < 1.0e38 && f as i128 == i)
        }
        (None, None) => a.as_f64() == b.as_f64(),
    }
}

/// Checks every number token of the JSON text `json` (which must already have parsed): each
/// must read back, once stored, as the decimal value it was written as. This catches what
/// parsing already rounded (long integers, long decimals, underflow). The error names the
/// first offending number and its dotted path. Malformed text is never a panic: the scan
/// only looks at what it can recognise.
pub fn check_json_numbers(json: &[u8]) -> Result<(), DbError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = json.get(i) {
        match byte {
            b'"' => {
                let end = string_end(json, i);
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        *key = Some((i, end));
                    }
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'-' | b'0'..=b'9' => {
                let start = i;
                while json
                    .get(i)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                // Number tokens are ASCII, so this slice is always valid UTF-8.
                let token = std::str::from_utf8(&json[start..i]).unwrap_or_default();
                check_token(token)
                    .map_err(|stored| refused(token, &path(json, &stack), &stored))?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A container open at the scan position.
enum Frame {
    /// `key`: byte range of the current member's name (with quotes).
    Object {
        key: Option<(usize, usize)>,
        expect_key: bool,
    },
    Array {
        index: usize,
    },
}

/// The index just past the string starting at `start` (a `"`), or the end of the text.
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

/// The dotted path of the scan position, built only for an error message.
fn path(json: &[u8], stack: &[Frame]) -> String {
    let parts: Vec<String> = stack
        .iter()
        .map(|frame| match frame {
            Frame::Object {
                key: Some((s, e)), ..
            } => json
                .get(*s..*e)
                .and_then(|raw| serde_json::from_slice::<String>(raw).ok())
                .unwrap_or_default(),
            Frame::Object { key: None, .. } => String::new(),
            Frame::Array { index } => index.to_string(),
        })
        .collect();
    parts.join(".")
}

/// `Err(what it would read back as)` unless the token reads back as its own decimal value.
fn check_token(token: &str) -> Result<(), String> {
    let Ok(n) = serde_json::from_str::<Number>(token) else {
        return Err("nothing: it is not a JSON number within the double range".into());
    };
    let stored = canonical_json(&Value::Number(n)).to_string();
    // An integer (no fraction, no exponent) beyond i64 is refused even when its double
    // happens to print as the same decimal (10^99 as 1e+99): it would come back as a float.
    let integer = !token.contains(['.', 'e', 'E']);
    if integer && token.parse::<i64>().is_err() {
        return Err(stored);
    }
    match (Decimal::parse(token), Decimal::parse(&stored)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(stored),
    }
}

/// Whether two JSON number tokens denote the same decimal value (`1.50` and `15e-1` do).
#[cfg(test)]
pub(crate) fn same_decimal(a: &str, b: &str) -> bool {
    matches!((Decimal::parse(a), Decimal::parse(b)), (Some(x), Some(y)) if x == y)
}

/// A decimal number in canonical form: `(-1)^negative × digits × 10^exponent`, `digits`
/// without leading or trailing zeros (empty for zero, whose sign is ignored).
#[derive(PartialEq, Eq, Debug)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// Parses a JSON number token (`-?int(.frac)?([eE][+-]?exp)?`); `None` if it is not one.
    fn parse(s: &str) -> Option<Decimal> {
        // Exponents are clamped: past this, no double is near, and the sum cannot overflow.
        const CLAMP: i64 = 1 << 40;
        let (negative, rest) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || frac.is_empty() || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let mut exponent: i64 = match exp {
            None => 0,
            Some(e) => {
                let (sign, digits) = match e.as_bytes().first() {
                    Some(b'-') => (-1, &e[1..]),
                    Some(b'+') => (1, &e[1..]),
                    _ => (1, e),
                };
                if digits.is_empty() || !all_digits(digits) {
                    return None;
                }
                let magnitude = digits
                    .bytes()
                    .fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(CLAMP));
                sign * magnitude
            }
        };
        exponent -= frac.len() as i64;
        let all = format!("{int}{frac}");
        let trimmed = all.trim_start_matches('0');
        let digits = trimmed.trim_end_matches('0');
        exponent += (trimmed.len() - digits.len()) as i64;
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            digits: digits.to_owned(),
            exponent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        let d = |s| Decimal::parse(s).expect("a number");
        assert_eq!(d("1.50"), d("15e-1"));
        assert_eq!(d("100"), d("1E2"));
        assert_eq!(d("0.0"), d("-0"));
        assert_ne!(d("0.1"), d("0.10000000000000001"));
        assert_eq!(d("1e99999999999999999999"), d("1e1099511627776"));
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse("e5").is_none());
    }

    #[test]
    fn scan_paths_name_the_offending_number() {
        let err = check_json_numbers(br#"{"a": [1, {"b\"": 2, "c": 18446744073709551615}]}"#)
            .expect_err("u64::MAX is beyond i64");
        let DbError::Invalid(msg) = err else {
            panic!("not Invalid: {err:?}")
        };
        assert!(msg.contains("18446744073709551615 at `a.1.c`"), "{msg}");
        assert!(msg.contains("1.8446744073709552e+19"), "{msg}");
    }

    #[test]
    fn numbers_inside_strings_are_not_numbers() {
        assert_eq!(
            check_json_numbers(br#"{"s": "18446744073709551615", "t": "\"1e-400"}"#),
            Ok(())
        );
    }

    #[test]
    fn malformed_text_never_panics() {
        for text in [&b"\"\\"[..], b"{\"a", b"]]]}}", b"-", b"1e", b"{\"k\":-"] {
            let _ = check_json_numbers(text);
        }
    }
}
