//! `--where PATH=VALUE` parsing: split at the first `=`; VALUE is JSON if it parses as JSON,
//! otherwise a plain string. A missing `=` or an empty PATH is a usage error, and so is a
//! number that the object model could not store exactly (it could never match).

use echo_actors::node::WhereEq;
use serde_json::Value;

/// Parses one `PATH=VALUE` clause (clap value parser).
pub fn parse_where(arg: &str) -> Result<WhereEq, String> {
    let Some((path, raw)) = arg.split_once('=') else {
        return Err(format!(
            "`{arg}` is not PATH=VALUE (e.g. done=true or name=Ada)"
        ));
    };
    if path.trim().is_empty() {
        return Err(format!(
            "`{arg}` has an empty PATH (e.g. done=true or address.city=Paris)"
        ));
    }
    let value = match serde_json::from_str::<Value>(raw) {
        // Parsing rounds long numbers; refuse rather than query for a rounded value.
        Ok(value) => {
            echo_actors::db::check_json_numbers(raw.as_bytes())
                .map_err(|e| format!("`{arg}`: {e}"))?;
            value
        }
        Err(_) => Value::String(raw.to_string()),
    };
    Ok(WhereEq {
        path: path.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(arg: &str) -> Value {
        parse_where(arg).expect("valid clause").value
    }

    #[test]
    fn json_values_are_parsed() {
        assert_eq!(value("n=3"), json!(3));
        assert_eq!(value("done=true"), json!(true));
        assert_eq!(value("x=null"), json!(null));
        assert_eq!(value("name=\"Ada\""), json!("Ada"));
        assert_eq!(value("tags=[1,2]"), json!([1, 2]));
    }

    #[test]
    fn other_values_are_plain_strings() {
        assert_eq!(value("name=Ada"), json!("Ada"));
        assert_eq!(value("name="), json!(""));
        assert_eq!(value("name=Ada Lovelace"), json!("Ada Lovelace"));
    }

    #[test]
    fn splits_at_the_first_equals_sign() {
        let clause = parse_where("address.city=a=b").expect("valid clause");
        assert_eq!(clause.path, "address.city");
        assert_eq!(clause.value, json!("a=b"));
    }

    #[test]
    fn inexact_numbers_are_an_error() {
        let err = parse_where("n=18446744073709551615").expect_err("beyond i64");
        assert!(err.contains("cannot be stored exactly"), "{err}");
        assert_eq!(value("n=9223372036854775807"), json!(i64::MAX));
    }

    #[test]
    fn missing_equals_or_path_is_an_error() {
        assert!(parse_where("done").is_err());
        assert!(parse_where("=3").is_err());
    }
}
