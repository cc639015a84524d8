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
    // An integer beyond i64 is refused even when a double holds it exactly (a multiple of
    // 2^11 above 2^63): it would read back as a float, not as the integer written.
    let beyond_i64 = n.is_u64() && !n.is_i64();
    let exact = match &stored {
        Value::Number(s) => !beyond_i64 && same_value(n, s),
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
/// Allocation-free unless refused: a 2 MiB body can hold some 200 000 numbers.
fn check_token(token: &str) -> Result<(), String> {
    // An integer (no fraction, no exponent) beyond i64 is refused even when its double
    // happens to print as the same decimal (10^99 as 1e+99): it would come back as a float.
    let accepted = if token.contains(['.', 'e', 'E']) {
        token.parse::<f64>().is_ok_and(|f| reads_back_as(token, f))
    } else {
        token.parse::<i64>().is_ok()
    };
    if accepted {
        Ok(())
    } else {
        Err(stored_form(token))
    }
}

/// Whether the double `f` (the token's value, correctly rounded, as serde_json with
/// `float_roundtrip` parses it) renders as the token's decimal value once stored.
fn reads_back_as(token: &str, f: f64) -> bool {
    let Some(stored) = Number::from_f64(f).map(|n| canonical_json(&Value::Number(n))) else {
        return false; // not finite
    };
    // Longest forms: "-9223372036854775808" and "-1.2345678901234567e-308". Written by
    // serde_json itself (ryu): where two shortest forms exist, std's `{:e}` may pick the
    // other one (838482470798629.25 is "…629.2" in ryu, "…629.3" in std).
    let mut buf = [0u8; 48];
    let mut out = &mut buf[..];
    let written = serde_json::to_writer(&mut out, &stored);
    let left = out.len();
    let len = buf.len() - left;
    written.is_ok()
        && std::str::from_utf8(&buf[..len]).is_ok_and(|rendered| same_decimal(token, rendered))
}

/// What the token would read back as (for the message of a refusal).
fn stored_form(token: &str) -> String {
    match serde_json::from_str::<Number>(token) {
        Ok(n) => canonical_json(&Value::Number(n)).to_string(),
        Err(_) => "nothing: it is not a JSON number within the double range".into(),
    }
}

/// Whether two JSON number tokens denote the same decimal value (`1.50` and `15e-1` do).
pub(crate) fn same_decimal(a: &str, b: &str) -> bool {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Some(x), Some(y)) => x.same(&y),
        _ => false,
    }
}

/// A decimal number token, split: its value is `(-1)^negative × D × 10^exponent`, where `D`
/// is the integer formed by the significant digits: `len` digits of `int ++ frac` starting
/// at `lead` (leading and trailing zeros dropped; `len == 0` for zero, whose sign is
/// ignored).
#[derive(Debug)]
struct Decimal<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    lead: usize,
    len: usize,
    exponent: i64,
}

impl<'a> Decimal<'a> {
    /// Parses a JSON number token (`-?int(.frac)?([eE][+-]?exp)?`); `None` if it is not one.
    fn parse(s: &'a str) -> Option<Decimal<'a>> {
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
        let (int, frac) = match mantissa.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (mantissa, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let exp: i64 = match exp {
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
        let mut d = Decimal {
            negative,
            int,
            frac,
            lead: 0,
            len: 0,
            exponent: 0,
        };
        let total = int.len() + frac.len();
        let lead = d.digits().take_while(|&b| b == b'0').count();
        if lead == total {
            d.negative = false;
            return Some(d);
        }
        let trail = d.digits().rev().take_while(|&b| b == b'0').count();
        d.lead = lead;
        d.len = total - lead - trail;
        d.exponent = exp - frac.len() as i64 + trail as i64;
        Some(d)
    }

    fn digits(&self) -> impl DoubleEndedIterator<Item = u8> + 'a {
        self.int.bytes().chain(self.frac.bytes())
    }

    fn same(&self, other: &Decimal) -> bool {
        self.negative == other.negative
            && self.len == other.len
            && self.exponent == other.exponent
            && self
                .digits()
                .skip(self.lead)
                .take(self.len)
                .eq(other.digits().skip(other.lead).take(other.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        assert!(same_decimal("1.50", "15e-1"));
        assert!(same_decimal("100", "1E2"));
        assert!(same_decimal("0.0", "-0"));
        assert!(same_decimal("-0.0012", "-12e-4"));
        assert!(!same_decimal("0.1", "0.10000000000000001"));
        assert!(!same_decimal("1", "-1"));
        assert!(!same_decimal("12", "21"));
        assert!(same_decimal("1e99999999999999999999", "1e1099511627776"));
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

    /// The double 838482470798629.25 has two shortest forms; the document renders it
    /// through serde_json (ryu) as `…629.2` (std's formatting prints `…629.3`), so only that
    /// form reads back as written.
    #[test]
    fn ties_between_shortest_forms_follow_the_rendering() {
        assert_eq!(check_token("838482470798629.2"), Ok(()));
        for other in ["838482470798629.3", "838482470798629.25"] {
            assert_eq!(check_token(other), Err("838482470798629.2".to_owned()));
        }
    }

    #[test]
    fn numbers_inside_strings_are_not_numbers() {
        assert_eq!(
            check_json_numbers(br#"{"s": "18446744073709551615", "t": "\"1e-400"}"#),
            Ok(())
        );
    }

    /// Not a benchmark gate: prints the cost of the scan on request bodies near the 2 MiB
    /// limit (`cargo test -p echo-actors --lib scan_cost -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn scan_cost() {
        for (what, item) in [("integers", "123456,"), ("doubles", "0.123456,")] {
            let mut body = String::from("[");
            while body.len() < 2_000_000 {
                body.push_str(item);
            }
            body.push('0');
            body.push(']');
            let start = std::time::Instant::now();
            let parsed: Value = serde_json::from_str(&body).expect("JSON");
            let parse = start.elapsed();
            let start = std::time::Instant::now();
            assert_eq!(check_json_numbers(body.as_bytes()), Ok(()));
            let scan = start.elapsed();
            println!(
                "{what}: {} bytes, parse {parse:?}, scan {scan:?}",
                body.len()
            );
            drop(parsed);
        }
    }

    /// The reference the fast check must agree with: parse as serde_json does, render as
    /// the document does, compare the decimals.
    fn slow_check(token: &str) -> bool {
        let integer = !token.contains(['.', 'e', 'E']);
        match serde_json::from_str::<Number>(token) {
            Ok(_) if integer => token.parse::<i64>().is_ok(),
            Ok(_) => same_decimal(token, &stored_form(token)),
            Err(_) => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_check_agrees_with_rendering_doubles(f in proptest::num::f64::ANY) {
            for token in [Value::from(f).to_string(), format!("{f:e}"), format!("{f:.3}")] {
                if serde_json::from_str::<Number>(&token).is_ok() {
                    proptest::prop_assert_eq!(check_token(&token).is_ok(), slow_check(&token), "{}", token);
                }
            }
        }

        #[test]
        fn fast_check_agrees_on_decimal_strings(t in "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?") {
            proptest::prop_assert_eq!(check_token(&t).is_ok(), slow_check(&t), "{}", t);
        }
    }

    #[test]
    fn malformed_text_never_panics() {
        for text in [&b"\"\\"[..], b"{\"a", b"]]]}}", b"-", b"1e", b"{\"k\":-"] {
            let _ = check_json_numbers(text);
        }
    }
}
