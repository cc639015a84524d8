//! Object filters.
//!
//! Contract: a [`Query`] selects rendered objects (the JSON that `SpaceDoc::get` returns) by
//! `@type` equality and by equality of values at dotted paths (`address.city` walks nested
//! objects). Values compare as JSON, except that numbers compare numerically (`1 == 1.0`);
//! collaborative text renders as a string and so compares as one. A path that does not exist
//! matches nothing, not even `null`. Deleted objects are excluded unless `include_deleted`.
//! [`Query::matches`] is pure and works on any rendered object, so subscriptions can reuse it.

use serde_json::{Number, Value};

/// A filter over the objects of a space.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Only objects whose `@type` equals this.
    pub type_name: Option<String>,
    /// Only objects whose value at each dotted path equals the given value.
    pub where_eq: Vec<(String, Value)>,
    /// Also return soft-deleted objects.
    pub include_deleted: bool,
}

impl Query {
    /// A query matching every live object.
    pub fn all() -> Self {
        Query::default()
    }

    /// A query matching live objects of one type.
    pub fn of_type(type_name: impl Into<String>) -> Self {
        Query {
            type_name: Some(type_name.into()),
            ..Query::default()
        }
    }

    /// Adds a property-equality condition.
    pub fn with_eq(mut self, path: impl Into<String>, value: Value) -> Self {
        self.where_eq.push((path.into(), value));
        self
    }

    /// Makes the query include soft-deleted objects.
    pub fn including_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

    /// Whether a rendered object passes this filter.
    pub fn matches(&self, object: &Value) -> bool {
        let Value::Object(fields) = object else {
            return false;
        };
        let deleted = matches!(fields.get("@deleted"), Some(Value::Bool(true)));
        if deleted && !self.include_deleted {
            return false;
        }
        if let Some(wanted) = &self.type_name {
            match fields.get("@type") {
                Some(Value::String(actual)) if actual == wanted => {}
                _ => return false,
            }
        }
        self.where_eq
            .iter()
            .all(|(path, expected)| lookup(object, path).is_some_and(|v| json_eq(v, expected)))
    }
}

/// The value at a dotted path, walking nested objects.
fn lookup<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(object, |value, key| value.as_object()?.get(key))
}

/// JSON equality with numbers compared by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn number_eq(x: &Number, y: &Number) -> bool {
    match (as_int(x), as_int(y)) {
        (Some(p), Some(q)) => p == q,
        (Some(i), None) => float_eq_int(y.as_f64(), i),
        (None, Some(i)) => float_eq_int(x.as_f64(), i),
        (None, None) => x.as_f64() == y.as_f64(),
    }
}

fn as_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Exact comparison of a float with an integer (no rounding of the integer to f64).
fn float_eq_int(f: Option<f64>, i: i128) -> bool {
    const LIMIT: f64 = 1.8446744073709552e19; // 2^64
    match f {
        Some(f) if f.fract() == 0.0 && f.abs() < LIMIT => f as i128 == i,
        _ => false,
    }
}
