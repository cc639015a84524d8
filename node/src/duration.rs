//! Durations on the command line (`--lifetime 7d`, `--timeout 90s`): whole numbers with a
//! unit (`ms`, `s`, `m`, `h`, `d`), several of them largest unit first (`1h30m`), or a bare
//! number of seconds. More than zero and at most 365 days; every refusal names the
//! accepted forms. Commands may bound the value further (`cli.rs`).

use std::time::Duration;

/// The longest duration accepted: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

const FORMS: &str = "give a whole number with a unit, e.g. 500ms, 90s, 10m, 1h or 7d, or \
                     several largest first, e.g. 1h30m; a bare number is seconds";

/// Units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 24 * 60 * 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a duration (clap value parser). See the module doc for the forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let refuse = |why: &str| Err(format!("`{text}` is not a duration: {why}; {FORMS}"));
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("an empty duration: {FORMS}"));
    }
    if trimmed.starts_with('-') {
        return refuse("it is negative");
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return match trimmed
            .parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
        {
            Some(ms) => bounded(text, ms),
            None => refuse("it is far too long (at most 365d)"),
        };
    }
    let mut total_ms: u64 = 0;
    // Index in UNITS of the last unit seen: the next must be smaller.
    let mut last: Option<usize> = None;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return refuse(&format!("`{rest}` does not start with a number"));
        }
        let (number, after) = rest.split_at(digits);
        let letters = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || !b.is_ascii())
            .count();
        let (unit, after) = after.split_at(letters);
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return refuse(&if !unit.is_empty() {
                format!("`{unit}` is not a unit (use ms, s, m, h or d)")
            } else if after.starts_with(['.', ',']) {
                "fractions are not accepted (write 1h30m, not 1.5h)".to_string()
            } else if after.is_empty() || after.starts_with(char::is_whitespace) {
                format!("{number} has no unit")
            } else {
                let junk = after.split_whitespace().next().unwrap_or(after);
                format!("`{junk}` is not a unit (use ms, s, m, h or d)")
            });
        };
        if last.is_some_and(|l| index <= l) {
            return refuse("units must go largest first, each once");
        }
        last = Some(index);
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1))
            .and_then(|ms| total_ms.checked_add(ms));
        match part {
            Some(sum) => total_ms = sum,
            None => return refuse("it is far too long (at most 365d)"),
        }
        rest = after.trim_start();
    }
    bounded(text, total_ms)
}

fn bounded(text: &str, ms: u64) -> Result<Duration, String> {
    let duration = Duration::from_millis(ms);
    if ms == 0 {
        Err(format!(
            "`{text}` is not a duration: it must be longer than zero; {FORMS}"
        ))
    } else if duration > MAX_DURATION {
        Err(format!(
            "`{text}` is too long: at most 365 days (365d); {FORMS}"
        ))
    } else {
        Ok(duration)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn accepts_each_unit_and_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration(" 2m\n"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn accepts_combinations_largest_first() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d2h3m4s5ms"), Ok(ms(93_784_005)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0h1s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn accepts_exactly_365_days() {
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("364d24h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("31536000"), Ok(MAX_DURATION));
    }

    /// Each refusal, with a phrase its message must hold; every message names the forms.
    #[test]
    fn refusals_say_why_and_the_accepted_forms() {
        let cases = [
            ("", "an empty duration"),
            ("   ", "an empty duration"),
            ("0", "longer than zero"),
            ("0s", "longer than zero"),
            ("0h0m", "longer than zero"),
            ("-5s", "negative"),
            ("-5", "negative"),
            ("5x", "`x` is not a unit"),
            ("5sec", "`sec` is not a unit"),
            ("5H", "`H` is not a unit"),
            ("5µs", "`µs` is not a unit"),
            ("5!", "`!` is not a unit"),
            ("1 h", "1 has no unit"),
            ("1.5h", "fractions are not accepted"),
            ("1h30", "30 has no unit"),
            ("h", "`h` does not start with a number"),
            ("1h-5m", "`-5m` does not start with a number"),
            ("30m1h", "largest first"),
            ("1m1m", "largest first"),
            ("366d", "at most 365 days"),
            ("365d1ms", "at most 365 days"),
            ("31536001", "at most 365 days"),
            ("18446744073709551615d", "far too long"),
            ("99999999999999999999999s", "far too long"),
            ("18446744073709551615", "far too long"),
            ("18446744073709551615ms1ms", "largest first"),
            ("10000000000000000d1h", "far too long"),
        ];
        for (text, phrase) in cases {
            let message = parse_duration(text).unwrap_err();
            assert!(message.contains(phrase), "{text:?}: {message}");
            assert!(message.contains("e.g. 500ms, 90s"), "{text:?}: {message}");
        }
    }

    #[test]
    fn sums_that_overflow_are_refused_not_wrapped() {
        let huge = format!("{}d{}h", u64::MAX / 86_400_000, u64::MAX / 3_600_000);
        assert!(parse_duration(&huge).unwrap_err().contains("far too long"));
    }
}
