//! Evaluation of a parsed expression against a [`Scope`].
//!
//! Evaluation is total: it never fails and never panics. Values found in the
//! scope are borrowed rather than cloned wherever possible.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::parser::{CmpOp, Node, Path, Segment};
use super::Scope;

static NULL: Value = Value::Null;

#[cfg(test)]
thread_local! {
    /// Number of path lookups performed on this thread (to observe short-circuiting).
    pub(super) static PATH_LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Evaluates `node`; literals and scope values are borrowed, computed
/// booleans are owned.
pub(super) fn eval<'v>(node: &'v Node, scope: &Scope<'v>) -> Cow<'v, Value> {
    match node {
        Node::Lit(value) => Cow::Borrowed(value),
        Node::Path(path) => Cow::Borrowed(resolve(path, scope)),
        Node::Not(operand) => Cow::Owned(Value::Bool(!truthy(&eval(operand, scope)))),
        Node::And(operands) => Cow::Owned(Value::Bool(operands.iter().all(|n| truthy(&eval(n, scope))))),
        Node::Or(operands) => Cow::Owned(Value::Bool(operands.iter().any(|n| truthy(&eval(n, scope))))),
        Node::Cmp(op, left, right) => {
            let (left, right) = (eval(left, scope), eval(right, scope));
            Cow::Owned(Value::Bool(compare(*op, &left, &right)))
        }
        Node::Cond(condition, then, otherwise) => {
            if truthy(&eval(condition, scope)) {
                eval(then, scope)
            } else {
                eval(otherwise, scope)
            }
        }
    }
}

/// Follows a path; anything missing (root, key, index, or a step into a
/// non-container) yields `null`.
fn resolve<'v>(path: &Path, scope: &Scope<'v>) -> &'v Value {
    #[cfg(test)]
    PATH_LOOKUPS.with(|count| count.set(count.get() + 1));
    let Some(mut current) = scope.get(&path.root) else {
        return &NULL;
    };
    for segment in &path.segments {
        let next = match (segment, current) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Index(index), Value::Array(items)) => {
                usize::try_from(*index).ok().and_then(|i| items.get(i))
            }
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return &NULL,
        }
    }
    current
}

/// `false` and `null` are falsy; every other value is truthy.
pub(super) fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

/// Applies a comparison operator.
pub(super) fn compare(op: CmpOp, left: &Value, right: &Value) -> bool {
    let ordering = || match (left, right) {
        (Value::Number(a), Value::Number(b)) => Some(compare_numbers(a, b)),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    };
    match op {
        CmpOp::Eq => json_eq(left, right),
        CmpOp::Ne => !json_eq(left, right),
        CmpOp::Lt => ordering() == Some(Ordering::Less),
        CmpOp::Le => matches!(ordering(), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ordering() == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ordering(), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// JSON equality, except that numbers compare by numeric value
/// (`1 == 1.0`), recursively inside arrays and objects.
pub(super) fn json_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Ordering::Equal,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => left == right,
    }
}

/// A number as an exact integer if it is one.
fn as_integer(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// Exact total order on JSON numbers (which are always finite), including
/// integers beyond 2^53 compared against floats.
pub(super) fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => compare_int_float(x, b.as_f64().unwrap_or(0.0)),
        (None, Some(y)) => compare_int_float(y, a.as_f64().unwrap_or(0.0)).reverse(),
        (None, None) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

/// Compares an integer with a finite float without losing precision.
fn compare_int_float(int: i128, float: f64) -> Ordering {
    // 2^127: every finite float below it (and at or above -2^127) converts
    // to i128 exactly once truncated.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if float.is_nan() {
        return Ordering::Equal;
    }
    if float >= LIMIT {
        return Ordering::Less;
    }
    if float < -LIMIT {
        return Ordering::Greater;
    }
    let truncated = float.trunc();
    // In range and integral, so this conversion is exact.
    let whole = truncated as i128;
    int.cmp(&whole).then_with(|| {
        if float > truncated {
            Ordering::Less
        } else if float < truncated {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(value: Value) -> Number {
        match value {
            Value::Number(n) => n,
            other => panic!("not a number: {other}"),
        }
    }

    #[test]
    fn truthiness() {
        assert!(!truthy(&json!(null)));
        assert!(!truthy(&json!(false)));
        for value in [
            json!(true),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
            json!("false"),
        ] {
            assert!(truthy(&value), "{value}");
        }
    }

    #[test]
    fn numeric_order_is_exact() {
        use Ordering::*;
        assert_eq!(compare_numbers(&n(json!(1)), &n(json!(1.0))), Equal);
        assert_eq!(compare_numbers(&n(json!(-0.0)), &n(json!(0))), Equal);
        assert_eq!(compare_numbers(&n(json!(3)), &n(json!(3.5))), Less);
        assert_eq!(compare_numbers(&n(json!(-3)), &n(json!(-3.5))), Greater);
        assert_eq!(compare_numbers(&n(json!(4)), &n(json!(3.5))), Greater);
        assert_eq!(compare_numbers(&n(json!(-1)), &n(json!(u64::MAX))), Less);
        assert_eq!(compare_numbers(&n(json!(i64::MIN)), &n(json!(u64::MAX))), Less);
        // 2^53 + 1 is not representable as f64; it must not equal 2^53 as float.
        let big = 9_007_199_254_740_993_i64;
        assert_eq!(
            compare_numbers(&n(json!(big)), &n(json!(9_007_199_254_740_992.0))),
            Greater
        );
        assert_eq!(compare_numbers(&n(json!(u64::MAX)), &n(json!(1e300))), Less);
        assert_eq!(compare_numbers(&n(json!(i64::MIN)), &n(json!(-1e300))), Greater);
        assert_eq!(compare_numbers(&n(json!(0.5)), &n(json!(0.25))), Greater);
    }

    #[test]
    fn structural_equality() {
        assert!(json_eq(
            &json!({"a": [1, {"b": 2.0}]}),
            &json!({"a": [1.0, {"b": 2}]})
        ));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!({"a": 1, "c": 2}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_eq(&json!([1]), &json!([1, 1])));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(!json_eq(&json!(null), &json!(false)));
        assert!(json_eq(&json!(null), &json!(null)));
    }

    #[test]
    fn ordering_of_mixed_types_is_always_false() {
        let values = [
            json!(null),
            json!(true),
            json!(1),
            json!("1"),
            json!([1]),
            json!({}),
        ];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                if i == j && (a.is_number() || a.is_string()) {
                    continue;
                }
                for op in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
                    assert!(!compare(op, a, b), "{a} {op:?} {b}");
                }
            }
        }
    }

    #[test]
    fn strings_order_by_scalar_value() {
        assert!(compare(CmpOp::Lt, &json!("Z"), &json!("a")));
        assert!(compare(CmpOp::Lt, &json!("z"), &json!("é")));
        assert!(compare(CmpOp::Lt, &json!("\u{ffff}"), &json!("😀")));
        assert!(compare(CmpOp::Lt, &json!("ab"), &json!("abc")));
        assert!(compare(CmpOp::Le, &json!("abc"), &json!("abc")));
        assert!(compare(CmpOp::Ge, &json!("abc"), &json!("abc")));
        assert!(!compare(CmpOp::Gt, &json!("abc"), &json!("abc")));
    }
}
