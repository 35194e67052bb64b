//! # LearnFlow expressions
//!
//! A small, side-effect free expression language used wherever a function
//! definition needs to look at event data:
//!
//! * trigger filters (`if`): `event.data.plan == "pro" && event.data.amount > 100`
//! * concurrency, throttle and idempotency keys: `event.data.userId`
//! * wait-for-event matches: `event.data.documentId == async.data.documentId`
//!
//! An expression is parsed once with [`Expr::parse`], which also fixes the
//! *roots* (top-level names) it may use, e.g. `["event"]` for a trigger
//! filter or `["event", "async"]` for a wait-for-event match. It is then
//! evaluated any number of times against a [`Scope`] that binds each root to
//! a JSON value. Evaluation never fails: anything missing is `null`.
//!
//! ## Grammar
//!
//! Operators from loosest to tightest binding: the conditional `? :`
//! (right-associative), `||`, `&&`, comparisons, unary `!`, then primaries. Whitespace (any Unicode white space) may
//! appear between any two tokens.
//!
//! ```text
//! expr       = or , [ "?" , expr , ":" , expr ] ;
//! or         = and , { "||" , and } ;
//! and        = comparison , { "&&" , comparison } ;
//! comparison = unary , [ compare-op , unary ] ;      (* no chaining *)
//! compare-op = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! unary      = "!" , unary | primary ;
//! primary    = literal | path | "(" , expr , ")" ;
//!
//! path       = root , { "." , ident | "[" , ( string | index ) , "]" } ;
//! root       = ident ;                  (* must be one of the allowed roots *)
//! index      = digit , { digit } ;      (* a non-negative integer, no leading zeros *)
//! ident      = ( letter | "_" ) , { letter | digit | "_" } ;   (* ASCII only *)
//!
//! literal    = string | number | "true" | "false" | "null" ;
//! number     = [ "-" ] , int , [ "." , digit , { digit } ]
//!              , [ ( "e" | "E" ) , [ "+" | "-" ] , digit , { digit } ] ;
//! int        = "0" | digit1-9 , { digit } ;
//! string     = '"' , { char | escape } , '"'
//!            | "'" , { char | escape } , "'" ;
//! escape     = "\" , ( "\" | "'" | '"' | "n" | "t" | "r" | "u" , 4 * hex-digit ) ;
//! ```
//!
//! Notes on the grammar:
//!
//! * `true`, `false` and `null` are keywords where a value is expected, but
//!   may be used as field names after a dot: `event.data.null`.
//! * A `-` is only allowed directly before a digit, where it is part of the
//!   number literal (`-3`, `-0.5e-2`); there is no arithmetic.
//! * `\uXXXX` escapes name a UTF-16 code unit; a surrogate pair written as
//!   two escapes (`"\ud83d\ude00"`) decodes to one character, an unpaired
//!   surrogate is an error. Any other character, including a raw newline,
//!   may appear in a string as is.
//! * Integer literals that fit in 64 bits are integers; every literal with
//!   a fraction or an exponent is a float (`1e3` is `1000.0`).
//! * Comparisons do not chain: `a == b == c` is an error; write
//!   `(a == b) == c`. `!a == b` means `(!a) == b`.
//! * An expression is at most 4096 characters long, and `(` and `!` may be
//!   nested at most 64 levels deep (counted together).
//!
//! ## Semantics
//!
//! * **Paths.** The root evaluates to the value bound in the scope (`null`
//!   when it is not bound). `.name`, `["name"]` and `['name']` look a key up
//!   in an object; `[n]` takes element `n` (from 0) of an array. Looking a key
//!   up in anything but an object, indexing anything but an array, a missing
//!   key and an index out of range all give `null`; so do all steps after
//!   that. A bare root (`event`) is the whole bound value.
//! * **Truthiness.** `false` and `null` are falsy; every other value is
//!   truthy, including `0`, `""`, `[]` and `{}`.
//! * **`==` and `!=`** compare JSON values structurally (arrays element by
//!   element, objects by key set and values), except that numbers compare by
//!   numeric value, exactly: `1 == 1.0` is `true`. Values of different types
//!   are never equal (`"1" != 1`, `null != false`). `a != b` is `!(a == b)`.
//! * **`<`, `<=`, `>`, `>=`**: two numbers compare numerically, two strings
//!   compare lexicographically by Unicode scalar values. Any other
//!   combination (mixed types, `null`, booleans, arrays, objects) makes all
//!   four operators `false`.
//! * **`&&` and `||`** evaluate left to right, stop as soon as the result is
//!   known, and return a boolean (`true`/`false`), not an operand.
//! * **`!x`** is the boolean negation of the truthiness of `x`.
//!
//! ## Results
//!
//! [`Expr::eval`] returns the JSON value; [`Expr::matches`] its truthiness
//! (used by filters and matches); [`Expr::key`] its key form (used by
//! concurrency, throttle and idempotency keys): a string as is, without
//! quotes, and any other value as compact JSON text, e.g. `null`, `42`,
//! `2.5`, `true`, `[1,2]`, `{"a":1}`.
//!
//! ## Examples
//!
//! With `event = {"name": "app/signup", "data": {"userId": "u1", "plan": "pro",
//! "seats": 3, "tags": ["a", "b"], "first name": "Ada"}}`:
//!
//! ```text
//! event.data.userId                              => "u1"   (key: u1)
//! event.data.seats                               => 3      (key: 3)
//! event.data.missing                             => null   (key: null)
//! event.data.tags[1]                             => "b"
//! event.data["first name"]                       => "Ada"
//! event.data.plan == 'pro' && event.data.seats >= 3   => true
//! event.data.seats == 3.0                        => true
//! event.data.seats > "2"                         => false  (mixed types)
//! !event.data.missing                            => true
//! event.name == "app/signup" || event.data.x     => true   (x is never looked up)
//! ```
//!
//! ## Errors
//!
//! [`Expr::parse`] reports the first problem it finds as an [`ExprError`]
//! whose `Display` form is
//!
//! ```text
//! <message> at column <column> of `<source>`
//! ```
//!
//! where `column` is the 1-based *character* (not byte) position of the
//! offending token, or one past the last character for an unexpected end.
//! For example `event.data.x = 1` gives
//! ``unexpected '=': use == to compare at column 14 of `event.data.x = 1` ``
//! and `foo == 1` with roots `event, async` gives
//! ``unknown name 'foo' (expected one of: event, async) at column 1 of `foo == 1` ``.

#![warn(missing_docs)]

mod eval;
mod lexer;
mod parser;

use std::fmt;

use serde_json::Value;

/// Longest accepted expression, in characters.
const MAX_SOURCE_CHARS: usize = 4096;

/// Deepest accepted nesting of `(` and `!`, counted together.
const MAX_DEPTH: usize = 64;

/// A parsed expression: its source text and syntax tree.
///
/// Two expressions are equal when both their source texts and their trees
/// are equal. [`Display`](fmt::Display) prints the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    node: parser::Node,
}

impl Expr {
    /// Parses `source`. Every field path must start with one of `roots`
    /// (for example `&["event"]` or `&["event", "async"]`).
    ///
    /// Never panics; any problem is reported as an [`ExprError`] with the
    /// column of the offending token (see the module documentation).
    pub fn parse(source: &str, roots: &[&str]) -> Result<Expr, ExprError> {
        let node = parser::parse(source, roots)?;
        Ok(Expr {
            source: source.to_string(),
            node,
        })
    }

    /// The source text this expression was parsed from, exactly as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression to a JSON value.
    ///
    /// Never panics and never fails: an unbound root, a missing field or an
    /// out-of-range index evaluates to `null`.
    pub fn eval(&self, scope: &Scope<'_>) -> Value {
        eval::eval(&self.node, scope).into_owned()
    }

    /// The truthiness of [`eval`](Expr::eval): `false` and `null` are falsy,
    /// every other value is truthy.
    pub fn matches(&self, scope: &Scope<'_>) -> bool {
        eval::truthy(&eval::eval(&self.node, scope))
    }

    /// The key form of [`eval`](Expr::eval): a string as is (without
    /// quotes); any other value as compact JSON text (`null`, `42`, `true`,
    /// `{"a":1}`).
    pub fn key(&self, scope: &Scope<'_>) -> String {
        match eval::eval(&self.node, scope).as_ref() {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The root names this expression actually references, sorted and
    /// without duplicates.
    pub fn roots_used(&self) -> Vec<String> {
        let mut roots = Vec::new();
        let mut pending = vec![&self.node];
        while let Some(node) = pending.pop() {
            match node {
                parser::Node::Lit(_) => {}
                parser::Node::Path(path) => roots.push(path.root.clone()),
                parser::Node::Not(operand) => pending.push(operand),
                parser::Node::And(operands) | parser::Node::Or(operands) => pending.extend(operands),
                parser::Node::Cmp(_, left, right) => {
                    pending.push(left);
                    pending.push(right);
                }
                parser::Node::Cond(condition, then, otherwise) => {
                    pending.push(condition);
                    pending.push(then);
                    pending.push(otherwise);
                }
            }
        }
        roots.sort();
        roots.dedup();
        roots
    }
}

impl fmt::Display for Expr {
    /// Prints the source text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Binds root names (such as `event` or `async`) to JSON values for
/// evaluation. Roots that are not bound evaluate to `null`; binding the same
/// root twice keeps the later value.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    bindings: Vec<(&'a str, &'a Value)>,
}

impl<'a> Scope<'a> {
    /// An empty scope: every root is `null`.
    pub fn new() -> Self {
        Scope::default()
    }

    /// This scope with `root` bound to `value` (replacing an earlier binding
    /// of the same root).
    pub fn with(mut self, root: &'a str, value: &'a Value) -> Self {
        self.bindings.push((root, value));
        self
    }

    /// The value bound to `root`, if any (the latest binding wins).
    fn get(&self, root: &str) -> Option<&'a Value> {
        self.bindings
            .iter()
            .rev()
            .find(|(name, _)| *name == root)
            .map(|(_, value)| *value)
    }
}

/// Why [`Expr::parse`] rejected a source text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at column {column} of `{source_text}`")]
pub struct ExprError {
    /// The source text that failed to parse. For an expression over the
    /// length limit, only its first 4096 characters followed by `...`.
    pub source_text: String,
    /// The 1-based character (not byte) column of the offending token, or
    /// one past the last character when the expression ended too early.
    pub column: usize,
    /// What is wrong, and where possible what was expected instead.
    pub message: String,
}

/// Builds an [`ExprError`] (shared by the lexer and the parser).
fn error_at(source: &str, column: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        source_text: source.to_string(),
        column,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOTS: &[&str] = &["event", "async"];

    fn parse(source: &str) -> Expr {
        Expr::parse(source, ROOTS).unwrap_or_else(|e| panic!("{source:?}: {e}"))
    }

    fn sample() -> Value {
        json!({
            "name": "app/signup",
            "data": {
                "userId": "u1",
                "plan": "pro",
                "seats": 3,
                "price": 2.5,
                "active": true,
                "none": null,
                "zero": 0,
                "empty": "",
                "tags": ["a", "b"],
                "first name": "Ada",
                "it's": "quoted",
                "0": "zero key",
                "nested": {"deep": [{"x": 1}, {"x": [10, 20]}]},
                "obj": {"a": 1, "b": [1, 2]},
            }
        })
    }

    fn eval_with(source: &str, event: &Value) -> Value {
        parse(source).eval(&Scope::new().with("event", event))
    }

    fn ev(source: &str) -> Value {
        eval_with(source, &sample())
    }

    #[test]
    fn the_conditional_picks_a_branch() {
        assert_eq!(ev("event.data.plan == 'pro' ? 120 : 0"), json!(120));
        assert_eq!(ev("event.data.plan == 'free' ? 120 : 0"), json!(0));
        // Right-associative, and looser than || and comparisons.
        assert_eq!(
            ev("event.data.seats > 5 ? 'big' : event.data.seats > 1 ? 'team' : 'solo'"),
            json!("team")
        );
        assert_eq!(
            ev("event.data.none || event.data.zero ? 'yes' : 'no'"),
            json!("yes")
        );
        assert_eq!(
            ev("(event.data.active ? event.data.tags : null)"),
            json!(["a", "b"])
        );
        assert_eq!(
            ev("event.data.missing ? 1 : event.data.obj"),
            json!({"a": 1, "b": [1, 2]})
        );
        let e = Expr::parse("event.data.a ? 1", ROOTS).unwrap_err();
        assert!(e.message.contains("':'"), "{e}");
        let e = Expr::parse("event.data.a ? : 2", ROOTS).unwrap_err();
        assert_eq!(e.column, 16, "{e}");
        assert!(Expr::parse("1 : 2", ROOTS).is_err());
        let deep = "event.data.a ? ".repeat(70) + "1" + &" : 0".repeat(70);
        let e = Expr::parse(&deep, ROOTS).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
        assert_eq!(
            parse("event.data.a ? async.x : 1").roots_used(),
            ["async", "event"]
        );
    }

    fn is_true(source: &str) -> bool {
        match ev(source) {
            Value::Bool(b) => b,
            other => panic!("{source:?} gave a non-boolean {other}"),
        }
    }

    fn err(source: &str) -> ExprError {
        match Expr::parse(source, ROOTS) {
            Err(e) => e,
            Ok(expr) => panic!("expected {source:?} to fail, got {expr:?}"),
        }
    }

    /// Asserts the error column and that the message contains `needle`.
    fn assert_err(source: &str, column: usize, needle: &str) {
        let e = err(source);
        assert_eq!(e.column, column, "{source:?}: {e}");
        assert!(e.message.contains(needle), "{source:?}: {e}");
        assert_eq!(e.source_text, source);
    }

    // ---- API basics -------------------------------------------------------

    #[test]
    fn source_and_display_round_trip() {
        let expr = parse("  event.data.userId  ");
        assert_eq!(expr.source(), "  event.data.userId  ");
        assert_eq!(expr.to_string(), "  event.data.userId  ");
        assert_eq!(parse(expr.source()), expr);
        assert_ne!(parse("event.data.userId"), expr);
    }

    #[test]
    fn bare_root_is_whole_value() {
        assert_eq!(ev("event"), sample());
        let other = json!({"data": {"documentId": "d1"}});
        let expr = Expr::parse("async", ROOTS).unwrap();
        assert_eq!(expr.eval(&Scope::new().with("async", &other)), other);
    }

    #[test]
    fn unbound_root_is_null() {
        assert_eq!(parse("async.data.x").eval(&Scope::new()), Value::Null);
        assert_eq!(parse("event").eval(&Scope::default()), Value::Null);
    }

    #[test]
    fn later_binding_wins() {
        let (a, b) = (json!(1), json!(2));
        let scope = Scope::new().with("event", &a).with("event", &b);
        assert_eq!(parse("event").eval(&scope), json!(2));
    }

    #[test]
    fn wait_for_event_match_uses_two_roots() {
        let event = json!({"data": {"documentId": "d1"}});
        let matching = json!({"data": {"documentId": "d1"}});
        let other = json!({"data": {"documentId": "d2"}});
        let expr = parse("event.data.documentId == async.data.documentId");
        assert!(expr.matches(&Scope::new().with("event", &event).with("async", &matching)));
        assert!(!expr.matches(&Scope::new().with("event", &event).with("async", &other)));
        assert!(Expr::parse("async.data.x", &["event"]).is_err());
    }

    // ---- paths ------------------------------------------------------------

    #[test]
    fn dotted_and_bracket_paths() {
        assert_eq!(ev("event.data.userId"), json!("u1"));
        assert_eq!(ev("event.data.tags[0]"), json!("a"));
        assert_eq!(ev("event.data.tags[1]"), json!("b"));
        assert_eq!(ev(r#"event.data["first name"]"#), json!("Ada"));
        assert_eq!(ev("event.data['first name']"), json!("Ada"));
        assert_eq!(ev(r#"event["data"].userId"#), json!("u1"));
        assert_eq!(ev(r"event.data['it\'s']"), json!("quoted"));
        assert_eq!(ev("event.data.nested.deep[1].x[1]"), json!(20));
        assert_eq!(ev("event.data['0']"), json!("zero key"));
        assert_eq!(ev("event . data [ 'userId' ]"), json!("u1"));
    }

    #[test]
    fn missing_fields_are_null() {
        for source in [
            "event.nope",
            "event.nope.deeper.still",
            "event.data.tags[2]",
            "event.data.tags[18446744073709551615]",
            "event.data.tags.length",
            "event.data.tags['0']",
            "event.data[0]",
            "event.data.userId.x",
            "event.data.userId[0]",
            "event.data.seats.x",
            "event.data.none.x",
            "event.data.none[0]",
            "event.data.active.x",
        ] {
            assert_eq!(ev(source), Value::Null, "{source}");
        }
        assert_eq!(eval_with("event.a[0]", &json!(null)), Value::Null);
        assert_eq!(eval_with("event.a", &json!([1])), Value::Null);
    }

    #[test]
    fn keywords_may_be_field_names_after_a_dot() {
        let event = json!({"true": 1, "null": 2, "false": 3});
        assert_eq!(eval_with("event.true", &event), json!(1));
        assert_eq!(eval_with("event.null", &event), json!(2));
        assert_eq!(eval_with("event.false", &event), json!(3));
    }

    // ---- literals ---------------------------------------------------------

    #[test]
    fn literals() {
        assert_eq!(ev("true"), json!(true));
        assert_eq!(ev("false"), json!(false));
        assert_eq!(ev("null"), json!(null));
        assert_eq!(ev("42"), json!(42));
        assert_eq!(ev("-3"), json!(-3));
        assert_eq!(ev("2.5"), json!(2.5));
        assert_eq!(ev("1e3"), json!(1000.0));
        assert_eq!(ev("-0.5e-2"), json!(-0.005));
        assert_eq!(ev(r#""double""#), json!("double"));
        assert_eq!(ev("'single'"), json!("single"));
        assert_eq!(ev(r#"'a\\b\'c\"d\ne\tf\rg\u00e9'"#), json!("a\\b'c\"d\ne\tf\rgé"));
        assert_eq!(ev(r"'\uD83D\uDE00'"), json!("😀"));
        assert_eq!(ev("'日本語'"), json!("日本語"));
    }

    // ---- operators --------------------------------------------------------

    #[test]
    fn equality() {
        assert!(is_true("event.data.plan == 'pro'"));
        assert!(is_true("event.data.plan != 'free'"));
        assert!(!is_true("event.data.plan == 'free'"));
        assert!(!is_true("event.data.plan != \"pro\""));
        assert!(is_true("event.data.none == null"));
        assert!(is_true("event.data.missing == null"));
        assert!(is_true("event.data.active == true"));
        assert!(is_true("event.data.tags == event.data.tags"));
        assert!(is_true("event.data.obj == event.data.obj"));
        assert!(!is_true("event.data.obj == event.data.nested"));
        assert!(is_true("event.data.obj.b[1] == 2"));
    }

    #[test]
    fn numeric_equality() {
        assert!(is_true("1 == 1.0"));
        assert!(is_true("event.data.seats == 3.0"));
        assert!(is_true("event.data.seats == 3e0"));
        assert!(is_true("event.data.price == 2.50"));
        assert!(is_true("-0.0 == 0"));
        assert!(!is_true("1 != 1.0"));
        assert!(!is_true("9007199254740993 == 9007199254740992.0"));
        assert!(is_true("18446744073709551615 == 18446744073709551615"));
    }

    #[test]
    fn structural_equality_with_numeric_leaves() {
        let event = json!({"a": {"x": [1, 2.0]}, "b": {"x": [1.0, 2]}, "c": {"x": [2, 1]}});
        assert_eq!(eval_with("event.a == event.b", &event), json!(true));
        assert_eq!(eval_with("event.a != event.c", &event), json!(true));
    }

    #[test]
    fn mixed_type_equality_is_false() {
        assert!(!is_true("'1' == 1"));
        assert!(!is_true("null == false"));
        assert!(!is_true("0 == false"));
        assert!(!is_true("'' == null"));
        assert!(is_true("'3' != event.data.seats"));
    }

    #[test]
    fn ordering_of_numbers() {
        assert!(is_true("event.data.seats > 2"));
        assert!(is_true("event.data.seats >= 3"));
        assert!(is_true("event.data.seats <= 3.0"));
        assert!(is_true("event.data.seats < 3.5"));
        assert!(!is_true("event.data.seats < 3"));
        assert!(!is_true("event.data.seats > 3"));
        assert!(is_true("-1 < 0"));
        assert!(is_true("-0.5e-2 > -1"));
    }

    #[test]
    fn ordering_of_strings() {
        assert!(is_true("'abc' < 'abd'"));
        assert!(is_true("'ab' < 'abc'"));
        assert!(is_true("'B' < 'a'"));
        assert!(is_true("'z' < 'é'"));
        assert!(is_true("'abc' <= 'abc'"));
        assert!(is_true("'abc' >= 'abc'"));
        assert!(!is_true("'abc' > 'abc'"));
        assert!(is_true("event.data.plan > 'free'"));
    }

    #[test]
    fn ordering_of_mixed_types_is_false() {
        for (a, b) in [
            ("1", "'1'"),
            ("'2'", "1"),
            ("null", "0"),
            ("null", "null"),
            ("true", "false"),
            ("event.data.tags", "event.data.tags"),
            ("event.data.obj", "1"),
            ("event.data.missing", "1"),
        ] {
            for op in ["<", "<=", ">", ">="] {
                let source = format!("{a} {op} {b}");
                assert!(!is_true(&source), "{source}");
            }
        }
    }

    #[test]
    fn logical_operators_return_booleans() {
        assert_eq!(ev("event.data.userId && event.data.plan"), json!(true));
        assert_eq!(ev("event.data.userId && event.data.none"), json!(false));
        assert_eq!(ev("event.data.none || event.data.userId"), json!(true));
        assert_eq!(ev("event.data.none || event.data.missing"), json!(false));
        assert_eq!(ev("event.data.zero && event.data.empty"), json!(true));
        assert_eq!(ev("true && true && false"), json!(false));
        assert_eq!(ev("false || false || true"), json!(true));
    }

    #[test]
    fn logical_operators_short_circuit() {
        let lookups = |source: &str| {
            let expr = parse(source);
            let event = sample();
            eval::PATH_LOOKUPS.with(|c| c.set(0));
            let value = expr.eval(&Scope::new().with("event", &event));
            (value, eval::PATH_LOOKUPS.with(|c| c.get()))
        };
        assert_eq!(lookups("false && event.a"), (json!(false), 0));
        assert_eq!(lookups("null && event.a && event.b"), (json!(false), 0));
        assert_eq!(lookups("true || event.a"), (json!(true), 0));
        assert_eq!(lookups("0 || event.a"), (json!(true), 0));
        assert_eq!(lookups("event.none && event.a"), (json!(false), 1));
        assert_eq!(lookups("true && event.a && event.b"), (json!(false), 1));
        assert_eq!(lookups("false || event.data || event.a"), (json!(true), 1));
        assert_eq!(lookups("event.a == event.b"), (json!(true), 2));
    }

    #[test]
    fn negation() {
        assert!(is_true("!event.data.missing"));
        assert!(is_true("!event.data.none"));
        assert!(is_true("!false"));
        assert!(!is_true("!true"));
        assert!(!is_true("!0"));
        assert!(!is_true("!''"));
        assert!(!is_true("!event.data.tags"));
        assert!(is_true("!!event.data.userId"));
        assert!(is_true("!(event.data.plan == 'free')"));
    }

    #[test]
    fn negation_binds_tighter_than_comparison() {
        // (!"pro") == false, not !("pro" == false)
        assert!(is_true("!event.data.plan == false"));
        assert!(!is_true("!event.data.plan == 'pro'"));
        assert!(is_true("!(event.data.plan == 'x') == true"));
    }

    #[test]
    fn precedence_of_and_over_or() {
        assert!(is_true("true || true && false"));
        assert!(!is_true("(true || true) && false"));
        assert!(is_true("false && false || true"));
        assert!(is_true(
            "event.data.seats == 3 && event.data.plan == 'pro' || false"
        ));
        assert!(is_true("(1 == 1) == true"));
    }

    // ---- matches / key / roots_used ----------------------------------------

    #[test]
    fn matches_uses_truthiness() {
        let event = sample();
        let scope = Scope::new().with("event", &event);
        let matches = |source: &str| parse(source).matches(&scope);
        assert!(matches("event.data.plan == 'pro'"));
        assert!(!matches("event.data.plan == 'free'"));
        assert!(matches("event.data.userId"));
        assert!(matches("event.data.zero"));
        assert!(matches("event.data.empty"));
        assert!(matches("event.data.tags"));
        assert!(!matches("event.data.none"));
        assert!(!matches("event.data.missing"));
        assert!(!matches("false"));
        assert!(matches("event"));
        assert!(!parse("event").matches(&Scope::new()));
    }

    #[test]
    fn key_forms() {
        let event = sample();
        let scope = Scope::new().with("event", &event);
        let key = |source: &str| parse(source).key(&scope);
        assert_eq!(key("event.data.userId"), "u1");
        assert_eq!(key("event.data.first"), "null");
        assert_eq!(key("event.data.seats"), "3");
        assert_eq!(key("42"), "42");
        assert_eq!(key("-3"), "-3");
        assert_eq!(key("event.data.price"), "2.5");
        assert_eq!(key("1e3"), "1000.0");
        assert_eq!(key("event.data.active"), "true");
        assert_eq!(key("event.data.obj"), r#"{"a":1,"b":[1,2]}"#);
        assert_eq!(key("event.data.tags"), r#"["a","b"]"#);
        assert_eq!(key("event.data.seats > 1"), "true");
        assert_eq!(key("'say \"hi\"'"), "say \"hi\"");
        assert_eq!(key("''"), "");
        assert_eq!(key("'null'"), "null");
    }

    #[test]
    fn roots_used_is_sorted_and_deduplicated() {
        assert_eq!(parse("true").roots_used(), Vec::<String>::new());
        assert_eq!(parse("event.a").roots_used(), vec!["event"]);
        assert_eq!(
            parse("event.a == async.b && !(async.c || event)").roots_used(),
            vec!["async", "event"]
        );
        assert_eq!(parse("async.x < 1").roots_used(), vec!["async"]);
    }

    // ---- errors -----------------------------------------------------------

    #[test]
    fn error_display_format() {
        let e = err("event.data.x = 1");
        assert_eq!(
            e,
            ExprError {
                source_text: "event.data.x = 1".into(),
                column: 14,
                message: "unexpected '=': use == to compare".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "unexpected '=': use == to compare at column 14 of `event.data.x = 1`"
        );
    }

    #[test]
    fn empty_expression() {
        assert_err("", 1, "empty expression");
        assert_err("   \t\n", 1, "empty expression");
    }

    #[test]
    fn unexpected_character() {
        assert_err("event.x # 1", 9, "unexpected character '#'");
        assert_err("event.x == é", 12, "unexpected character 'é'");
        assert_err("'é' == é", 8, "unexpected character 'é'");
        assert_err("event.x\u{0}", 8, "unexpected character '\\0'");
        assert_err("event.x == - 1", 12, "unexpected character '-'");
        assert_err("event.x + 1", 9, "unexpected character '+'");
        assert_err("event.x == `a`", 12, "unexpected character '`'");
    }

    #[test]
    fn unterminated_string() {
        assert_err("event.x == \"abc", 12, "unterminated string");
        assert_err("event.x == 'abc\\'", 12, "unterminated string");
    }

    #[test]
    fn bad_escape() {
        assert_err(r#"event.x == "a\qb""#, 14, r"invalid escape sequence '\q'");
        assert_err(r"event.x == '\x41'", 13, r"invalid escape sequence '\x'");
        assert_err(r"event.x == '\u00g0'", 13, "4 hex digits");
        assert_err(r"event.x == '\udc00'", 13, "surrogate");
    }

    #[test]
    fn invalid_number() {
        assert_err("event.x == 1.", 12, "invalid number '1.'");
        assert_err("event.x == 007", 12, "invalid number '007'");
        assert_err("event.x == 12abc", 12, "invalid number '12abc'");
        assert_err("event.x == 1e", 12, "invalid number '1e'");
        assert_err("event.x == 1e400", 12, "out of range");
    }

    #[test]
    fn unexpected_end() {
        assert_err("event.x ==", 11, "unexpected end of expression, expected a value");
        assert_err("event.x &&", 11, "unexpected end of expression, expected a value");
        assert_err("!", 2, "unexpected end of expression, expected a value");
        assert_err("(", 2, "unexpected end of expression, expected a value");
        assert_err(
            "event.",
            7,
            "unexpected end of expression, expected a field name after '.'",
        );
        assert_err(
            "event[",
            7,
            "unexpected end of expression, expected a string or integer index",
        );
    }

    #[test]
    fn unexpected_token() {
        assert_err("event.x == )", 12, "unexpected ')', expected a value");
        assert_err("event.x == &&", 12, "unexpected '&&', expected a value");
        assert_err("== 1", 1, "unexpected '==', expected a value");
        assert_err(
            "event.1",
            7,
            "unexpected number 1, expected a field name after '.'",
        );
        assert_err(
            "event. 1",
            8,
            "unexpected number 1, expected a field name after '.'",
        );
        assert_err(
            "event.'a'",
            7,
            "unexpected string \"a\", expected a field name after '.'",
        );
        assert_err("event['a' 'b']", 11, "unexpected string \"b\", expected ']'");
        assert_err("(event.x event.y)", 10, "unexpected name 'event', expected ')'");
    }

    #[test]
    fn trailing_input() {
        assert_err("event.x event.y", 9, "trailing input: unexpected name 'event'");
        assert_err("event.x )", 9, "trailing input: unexpected ')'");
        assert_err("1 2", 3, "trailing input: unexpected number 2");
        assert_err("(event).x", 8, "trailing input: unexpected '.'");
        assert_err("true.x", 5, "trailing input");
    }

    #[test]
    fn single_operator_characters() {
        assert_err("event.data.x = 1", 14, "use == to compare");
        assert_err("event.a & event.b", 9, "use && for logical and");
        assert_err("event.a | event.b", 9, "use || for logical or");
    }

    #[test]
    fn unknown_root() {
        let e = err("foo.bar == 1");
        assert_eq!(e.column, 1);
        assert_eq!(e.message, "unknown name 'foo' (expected one of: event, async)");
        assert_err("event.x == foo", 12, "unknown name 'foo'");
        assert_err("True", 1, "unknown name 'True'");
        let e = Expr::parse("async.x", &["event"]).unwrap_err();
        assert_eq!(e.message, "unknown name 'async' (expected one of: event)");
        let e = Expr::parse("event", &[]).unwrap_err();
        assert_eq!(e.message, "unknown name 'event' (no names are allowed here)");
        assert!(Expr::parse("1 == 1", &[]).is_ok());
    }

    #[test]
    fn unclosed_brackets() {
        assert_err("(event.x == 1", 1, "unclosed '('");
        assert_err("((event.x)", 1, "unclosed '('");
        assert_err("(event.x) && (true", 14, "unclosed '('");
        assert_err("event['a'", 6, "unclosed '['");
        assert_err("event.a[0", 8, "unclosed '['");
    }

    #[test]
    fn bad_bracket_index() {
        let needle = "bracket index must be a string or a non-negative integer";
        assert_err("event[-1]", 7, needle);
        assert_err("event[1.5]", 7, needle);
        assert_err("event[1e2]", 7, needle);
        assert_err("event[true]", 7, needle);
        assert_err("event[event.x]", 7, needle);
        assert_err("event[]", 7, needle);
        assert_err("event[(0)]", 7, needle);
        assert_err("event[99999999999999999999]", 7, "too large");
    }

    #[test]
    fn comparisons_do_not_chain() {
        assert_err("event.a == event.b == event.c", 20, "comparisons do not chain");
        assert_err("1 < 2 < 3", 7, "add parentheses");
        assert_err("1 < 2 == true", 7, "(a < b) == c");
        assert!(Expr::parse("(1 < 2) == true", ROOTS).is_ok());
        assert!(Expr::parse("1 < (2 == true)", ROOTS).is_ok());
    }

    #[test]
    fn length_limit() {
        let ok = format!("'{}'", "a".repeat(MAX_SOURCE_CHARS - 2));
        assert!(Expr::parse(&ok, ROOTS).is_ok());
        let long = format!("'{}'", "a".repeat(MAX_SOURCE_CHARS - 1));
        let e = Expr::parse(&long, ROOTS).unwrap_err();
        assert_eq!(e.column, MAX_SOURCE_CHARS + 1);
        assert!(e.message.contains("longer than 4096 characters"), "{e}");
        assert_eq!(e.source_text.chars().count(), MAX_SOURCE_CHARS + 3);
        // Characters, not bytes: 4096 two-byte characters are fine.
        let wide = format!("'{}'", "é".repeat(MAX_SOURCE_CHARS - 2));
        assert!(Expr::parse(&wide, ROOTS).is_ok());
        let huge = "(".repeat(1_000_000);
        assert_eq!(Expr::parse(&huge, ROOTS).unwrap_err().column, 4097);
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}event.x{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(parse(&ok).eval(&Scope::new()), Value::Null);
        let deep = format!("{}event.x{}", "(".repeat(65), ")".repeat(65));
        assert_err(&deep, 65, "nested too deeply");
        assert_err(&"(".repeat(4000), 65, "nested too deeply");
        assert_err(&"!".repeat(4000), 65, "nested too deeply");
        assert!(is_true(&format!("{}true", "!".repeat(64))));
        // Long flat chains are not nesting.
        let chain = vec!["true"; 500].join("&&");
        assert!(is_true(&chain));
    }

    // ---- property tests ---------------------------------------------------

    mod props {
        use super::super::parser::{CmpOp, Node, Path, Segment};
        use super::*;
        use proptest::prelude::*;

        const TOKENS: &[&str] = &[
            "event",
            "async",
            "foo",
            "data",
            "true",
            "false",
            "null",
            ".",
            "[",
            "]",
            "(",
            ")",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "&&",
            "||",
            "!",
            "=",
            "&",
            "|",
            "-",
            "'",
            "\"",
            "\\",
            "'a'",
            "\"b\"",
            "'\\u00e9'",
            "0",
            "1",
            "-3",
            "2.5",
            "1e3",
            "01",
            "1.",
            "é",
            "#",
            " ",
            "\t",
            "\n",
            "\u{0}",
        ];

        fn assert_column_in_range(source: &str, result: &Result<Expr, ExprError>) {
            if let Err(e) = result {
                let len = source.chars().count();
                assert!(
                    (1..=len + 1).contains(&e.column),
                    "column {} out of 1..={} for {source:?}: {e}",
                    e.column,
                    len + 1
                );
            }
        }

        fn json_leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                (-1000i64..1000).prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                (-8i32..8).prop_map(|n| Value::from(f64::from(n) / 2.0)),
                "[a-c]{0,3}".prop_map(Value::String),
                any::<String>().prop_map(Value::String),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            json_leaf().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-c]", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Source text for a literal; numbers use Rust's round-tripping
        /// formats, strings escape everything that needs it.
        fn literal_text(value: &Value) -> String {
            match value {
                Value::String(s) => {
                    let mut out = String::from("'");
                    for c in s.chars() {
                        match c {
                            '\'' => out.push_str("\\'"),
                            '\\' => out.push_str("\\\\"),
                            '\n' => out.push_str("\\n"),
                            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                            c => out.push(c),
                        }
                    }
                    out.push('\'');
                    out
                }
                Value::Number(n) if n.is_f64() => {
                    // Rust prints e.g. `1e300` and `1.5e-7`; both are valid.
                    format!("{:?}", n.as_f64().unwrap_or(0.0))
                }
                other => other.to_string(),
            }
        }

        fn literal() -> impl Strategy<Value = Value> {
            json_leaf()
        }

        /// Literals with short strings, so that generated expressions stay
        /// well under the length limit.
        fn short_literal() -> impl Strategy<Value = Value> {
            prop_oneof![
                json_leaf().prop_filter("short", |v| v.as_str().is_none_or(|s| s.len() < 12)),
                "\\PC{0,6}".prop_map(Value::String),
                "['\"\\\\\n\t]{0,4}".prop_map(Value::String),
            ]
        }

        fn ident() -> impl Strategy<Value = String> {
            "[A-Za-z_][A-Za-z0-9_]{0,6}"
        }

        fn segment() -> impl Strategy<Value = (String, Segment)> {
            prop_oneof![
                ident().prop_map(|name| (format!(".{name}"), Segment::Key(name))),
                "[ a-z'\"\\\\é]{0,5}".prop_map(|key| {
                    let text = literal_text(&Value::String(key.clone()));
                    (format!("[{text}]"), Segment::Key(key))
                }),
                (0u64..100).prop_map(|i| (format!("[{i}]"), Segment::Index(i))),
            ]
        }

        fn path() -> impl Strategy<Value = (String, Node)> {
            (
                prop::sample::select(vec!["event", "async"]),
                prop::collection::vec(segment(), 0..4),
            )
                .prop_map(|(root, segments)| {
                    let text = segments.iter().fold(root.to_string(), |mut acc, (t, _)| {
                        acc.push_str(t);
                        acc
                    });
                    let node = Node::Path(Path {
                        root: root.to_string(),
                        segments: segments.into_iter().map(|(_, s)| s).collect(),
                    });
                    (text, node)
                })
        }

        fn space() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["", "", " ", "  ", "\t", "\n"])
        }

        #[derive(Clone, Copy, PartialEq, PartialOrd)]
        enum Level {
            Or,
            And,
            Cmp,
            Unary,
        }

        fn level(node: &Node) -> Level {
            match node {
                Node::Or(_) => Level::Or,
                Node::And(_) => Level::And,
                Node::Cmp(..) => Level::Cmp,
                _ => Level::Unary,
            }
        }

        /// Renders `node` so it parses back at `min` level or tighter,
        /// adding parentheses only where precedence requires (or flattening
        /// would change the tree).
        fn operand(text: String, node: &Node, min: Level, paren: bool) -> String {
            if level(node) >= min && !paren {
                text
            } else {
                format!("({text})")
            }
        }

        /// Random well-formed expressions with the tree they must parse to.
        fn expression() -> impl Strategy<Value = (String, Node)> {
            let leaf = prop_oneof![
                short_literal().prop_map(|v| (literal_text(&v), Node::Lit(v))),
                path(),
            ];
            leaf.prop_recursive(5, 40, 4, |inner| {
                let ops = prop::sample::select(vec![
                    (CmpOp::Eq, "=="),
                    (CmpOp::Ne, "!="),
                    (CmpOp::Lt, "<"),
                    (CmpOp::Le, "<="),
                    (CmpOp::Gt, ">"),
                    (CmpOp::Ge, ">="),
                ]);
                prop_oneof![
                    (inner.clone(), space(), any::<bool>()).prop_map(|((t, n), s, paren)| {
                        let text = format!("!{s}{}", operand(t, &n, Level::Unary, paren));
                        (text, Node::Not(Box::new(n)))
                    }),
                    (inner.clone(), ops, inner.clone(), space(), space()).prop_map(
                        |((lt, ln), (op, sym), (rt, rn), s1, s2)| {
                            let text = format!(
                                "{}{s1}{sym}{s2}{}",
                                operand(lt, &ln, Level::Unary, false),
                                operand(rt, &rn, Level::Unary, false)
                            );
                            (text, Node::Cmp(op, Box::new(ln), Box::new(rn)))
                        }
                    ),
                    (
                        prop::collection::vec((inner.clone(), space()), 2..4),
                        any::<bool>()
                    )
                        .prop_map(|(items, is_and)| {
                            let (sym, min) = if is_and {
                                ("&&", Level::Cmp)
                            } else {
                                ("||", Level::And)
                            };
                            let parts: Vec<String> = items
                                .iter()
                                .map(|((t, n), s)| format!("{s}{}{s}", operand(t.clone(), n, min, false)))
                                .collect();
                            let nodes = items.into_iter().map(|((_, n), _)| n).collect();
                            let node = if is_and { Node::And(nodes) } else { Node::Or(nodes) };
                            (parts.join(sym), node)
                        }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn parse_never_panics_on_arbitrary_strings(source in any::<String>()) {
                let result = Expr::parse(&source, ROOTS);
                assert_column_in_range(&source, &result);
            }

            #[test]
            fn parse_never_panics_on_printable_strings(source in "\\PC{0,40}") {
                let result = Expr::parse(&source, ROOTS);
                assert_column_in_range(&source, &result);
            }

            #[test]
            fn parse_never_panics_on_token_soup(
                tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..30),
                glue in prop::sample::select(vec!["", " "]),
                event in json_value(),
            ) {
                let source = tokens.join(glue);
                let result = Expr::parse(&source, ROOTS);
                assert_column_in_range(&source, &result);
                if let Ok(expr) = result {
                    // Evaluation is total, too.
                    let scope = Scope::new().with("event", &event).with("async", &event);
                    let _ = expr.eval(&scope);
                    let _ = expr.key(&scope);
                    let _ = expr.matches(&scope);
                }
            }

            #[test]
            fn well_formed_expressions_parse_to_their_tree((source, node) in expression()) {
                let expr = Expr::parse(&source, ROOTS)
                    .map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(&expr.node, &node, "source: {}", source);
                let again = Expr::parse(expr.source(), ROOTS)
                    .map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(&again, &expr);
                prop_assert_eq!(Expr::parse(&expr.to_string(), ROOTS).ok(), Some(expr));
            }

            #[test]
            fn literals_round_trip(value in literal()) {
                let source = literal_text(&value);
                let expr = Expr::parse(&source, ROOTS)
                    .map_err(|e| TestCaseError::fail(format!("{source}: {e}")))?;
                let result = expr.eval(&Scope::new());
                prop_assert!(super::super::eval::json_eq(&result, &value), "{} -> {}", source, result);
            }

            #[test]
            fn eq_agrees_with_not_ne_for_literals(a in literal(), b in literal()) {
                let (ta, tb) = (literal_text(&a), literal_text(&b));
                let eq = parse(&format!("{ta} == {tb}")).eval(&Scope::new());
                let not_ne = parse(&format!("!({ta} != {tb})")).eval(&Scope::new());
                prop_assert_eq!(eq, not_ne);
            }

            #[test]
            fn eq_agrees_with_not_ne_for_values(a in json_value(), b in json_value()) {
                let event = json!({"a": a, "b": b});
                let scope = Scope::new().with("event", &event);
                let eq = parse("event.a == event.b").eval(&scope);
                let not_ne = parse("!(event.a != event.b)").eval(&scope);
                prop_assert_eq!(&eq, &not_ne);
                // Equality is reflexive and symmetric.
                prop_assert_eq!(parse("event.a == event.a").eval(&scope), json!(true));
                prop_assert_eq!(parse("event.b == event.a").eval(&scope), eq);
            }

            #[test]
            fn comparison_is_antisymmetric(
                (a, b) in prop_oneof![
                    (json_leaf(), json_leaf()),
                    (any::<i64>().prop_map(Value::from), any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from)),
                    ("[a-c]{0,3}".prop_map(Value::String), "[a-c]{0,3}".prop_map(Value::String)),
                ]
            ) {
                let event = json!({"x": a, "y": b});
                let scope = Scope::new().with("event", &event);
                let t = |s: &str| parse(s).eval(&scope) == json!(true);
                if t("event.x < event.y") {
                    prop_assert!(!t("event.y < event.x"));
                    prop_assert!(t("event.y > event.x"));
                    prop_assert!(t("event.x <= event.y"));
                    prop_assert!(!t("event.x == event.y"));
                }
                if t("event.x <= event.y") && t("event.y <= event.x") {
                    prop_assert!(t("event.x == event.y"));
                }
                let comparable = (a_is(&event, "x") && a_is(&event, "y")) || (s_is(&event, "x") && s_is(&event, "y"));
                if comparable {
                    // Total order: exactly one of <, ==, > holds.
                    let count = [t("event.x < event.y"), t("event.x == event.y"), t("event.x > event.y")]
                        .iter().filter(|b| **b).count();
                    prop_assert_eq!(count, 1);
                }
            }
        }

        fn a_is(event: &Value, key: &str) -> bool {
            event.get(key).is_some_and(Value::is_number)
        }

        fn s_is(event: &Value, key: &str) -> bool {
            event.get(key).is_some_and(Value::is_string)
        }
    }
}
