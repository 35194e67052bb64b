//! Recursive-descent parser producing the expression AST.
//!
//! Recursion only happens through `(`, `!` and `?`, and all count towards the
//! nesting limit, so parsing (and later evaluating and dropping) an AST never
//! recurses deeper than [`MAX_DEPTH`](super::MAX_DEPTH) levels. `&&` and `||`
//! chains are kept flat (n-ary) for the same reason.

use serde_json::Value;

use super::lexer::{Lexer, Token, TokenKind};
use super::{error_at, ExprError, MAX_DEPTH, MAX_SOURCE_CHARS};

/// A node of the expression tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// A literal JSON value (`"s"`, `42`, `true`, `false`, `null`).
    Lit(Value),
    /// A field path starting at an allowed root.
    Path(Path),
    /// `!operand`.
    Not(Box<Node>),
    /// `a && b && ...`, always at least two operands.
    And(Vec<Node>),
    /// `a || b || ...`, always at least two operands.
    Or(Vec<Node>),
    /// `left op right`.
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `condition ? then : otherwise`.
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// A field path such as `event.data["k"][0]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Path {
    pub(super) root: String,
    pub(super) segments: Vec<Segment>,
}

/// One step of a field path after the root.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Segment {
    /// `.name`, `["name"]` or `['name']`: look up a key in an object.
    Key(String),
    /// `[n]`: index into an array.
    Index(u64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator as written in source text.
    pub(super) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn from_token(kind: &TokenKind) -> Option<CmpOp> {
        Some(match kind {
            TokenKind::EqEq => CmpOp::Eq,
            TokenKind::NotEq => CmpOp::Ne,
            TokenKind::Lt => CmpOp::Lt,
            TokenKind::Le => CmpOp::Le,
            TokenKind::Gt => CmpOp::Gt,
            TokenKind::Ge => CmpOp::Ge,
            _ => return None,
        })
    }
}

/// Parses a whole source text, checking roots against `roots`.
pub(super) fn parse(source: &str, roots: &[&str]) -> Result<Node, ExprError> {
    if source.chars().nth(MAX_SOURCE_CHARS).is_some() {
        // Keep the error small: quote only the part within the limit.
        let head: String = source.chars().take(MAX_SOURCE_CHARS).collect();
        return Err(error_at(
            &format!("{head}..."),
            MAX_SOURCE_CHARS + 1,
            format!("expression is longer than {MAX_SOURCE_CHARS} characters"),
        ));
    }
    if source.trim().is_empty() {
        return Err(error_at(source, 1, "empty expression"));
    }
    let mut parser = Parser::new(source, roots)?;
    let node = parser.ternary()?;
    if parser.current.kind != TokenKind::Eof {
        return Err(parser.error_here(format!(
            "trailing input: unexpected {} after a complete expression \
             (expected an operator or the end of the expression)",
            parser.current.kind.describe()
        )));
    }
    Ok(node)
}

struct Parser<'s, 'r> {
    source: &'s str,
    lexer: Lexer<'s>,
    current: Token,
    roots: &'r [&'r str],
    depth: usize,
}

impl<'s, 'r> Parser<'s, 'r> {
    fn new(source: &'s str, roots: &'r [&'r str]) -> Result<Self, ExprError> {
        let mut lexer = Lexer::new(source);
        let current = lexer.next_token()?;
        Ok(Parser {
            source,
            lexer,
            current,
            roots,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<(), ExprError> {
        self.current = self.lexer.next_token()?;
        Ok(())
    }

    fn error_at(&self, column: usize, message: impl Into<String>) -> ExprError {
        error_at(self.source, column, message)
    }

    fn error_here(&self, message: impl Into<String>) -> ExprError {
        self.error_at(self.current.column, message)
    }

    /// "unexpected end of expression, expected X" or "unexpected T, expected X".
    fn unexpected(&self, expected: &str) -> ExprError {
        match &self.current.kind {
            TokenKind::Eof => self.error_here(format!("unexpected end of expression, expected {expected}")),
            other => self.error_here(format!("unexpected {}, expected {expected}", other.describe())),
        }
    }

    /// Enters one nesting level (a `(` or a `!` at `column`).
    fn enter(&mut self, column: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                column,
                format!("expression is nested too deeply (at most {MAX_DEPTH} levels of '(', '!' and '?')"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `or [ "?" ternary ":" ternary ]`; each `?` is a nesting level.
    fn ternary(&mut self) -> Result<Node, ExprError> {
        let condition = self.or()?;
        if self.current.kind != TokenKind::Question {
            return Ok(condition);
        }
        self.enter(self.current.column)?;
        self.advance()?;
        let then = self.ternary()?;
        if self.current.kind != TokenKind::Colon {
            return Err(self.unexpected("':' (condition ? then : otherwise)"));
        }
        self.advance()?;
        let otherwise = self.ternary()?;
        self.leave();
        Ok(Node::Cond(
            Box::new(condition),
            Box::new(then),
            Box::new(otherwise),
        ))
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let first = self.and()?;
        if self.current.kind != TokenKind::OrOr {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.current.kind == TokenKind::OrOr {
            self.advance()?;
            operands.push(self.and()?);
        }
        Ok(Node::Or(operands))
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let first = self.comparison()?;
        if self.current.kind != TokenKind::AndAnd {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.current.kind == TokenKind::AndAnd {
            self.advance()?;
            operands.push(self.comparison()?);
        }
        Ok(Node::And(operands))
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let left = self.unary()?;
        let Some(op) = CmpOp::from_token(&self.current.kind) else {
            return Ok(left);
        };
        self.advance()?;
        let right = self.unary()?;
        if CmpOp::from_token(&self.current.kind).is_some() {
            return Err(self.error_here(format!(
                "comparisons do not chain: add parentheses to say which comparison comes \
                 first, e.g. (a {} b) {} c",
                op.symbol(),
                self.current.kind.describe().trim_matches('\'')
            )));
        }
        Ok(Node::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.current.kind != TokenKind::Bang {
            return self.primary();
        }
        self.enter(self.current.column)?;
        self.advance()?;
        let operand = self.unary()?;
        self.leave();
        Ok(Node::Not(Box::new(operand)))
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let node = match &self.current.kind {
            TokenKind::LParen => {
                let open = self.current.column;
                self.enter(open)?;
                self.advance()?;
                let inner = self.ternary()?;
                match self.current.kind {
                    TokenKind::RParen => {}
                    TokenKind::Eof => {
                        return Err(self.error_at(open, "unclosed '(' (missing ')')"));
                    }
                    _ => return Err(self.unexpected("')' or an operator")),
                }
                self.leave();
                inner
            }
            TokenKind::Str(s) => Node::Lit(Value::String(s.clone())),
            TokenKind::Num { value, .. } => Node::Lit(Value::Number(value.clone())),
            TokenKind::Ident(name) => match name.as_str() {
                "true" => Node::Lit(Value::Bool(true)),
                "false" => Node::Lit(Value::Bool(false)),
                "null" => Node::Lit(Value::Null),
                _ => return self.path(),
            },
            _ => return Err(self.unexpected("a value (a literal, a field path or '(')")),
        };
        self.advance()?;
        Ok(node)
    }

    fn path(&mut self) -> Result<Node, ExprError> {
        let root = match &self.current.kind {
            TokenKind::Ident(name) => name.clone(),
            _ => return Err(self.unexpected("a field path")),
        };
        if !self.roots.contains(&root.as_str()) {
            let expected = if self.roots.is_empty() {
                "no names are allowed here".to_string()
            } else {
                format!("expected one of: {}", self.roots.join(", "))
            };
            return Err(self.error_here(format!("unknown name '{root}' ({expected})")));
        }
        self.advance()?;
        let mut segments = Vec::new();
        loop {
            match self.current.kind {
                TokenKind::Dot => {
                    self.advance()?;
                    let TokenKind::Ident(name) = &self.current.kind else {
                        return Err(self.unexpected("a field name after '.'"));
                    };
                    segments.push(Segment::Key(name.clone()));
                    self.advance()?;
                }
                TokenKind::LBracket => {
                    let open = self.current.column;
                    self.advance()?;
                    segments.push(self.bracket_index()?);
                    self.advance()?;
                    match self.current.kind {
                        TokenKind::RBracket => self.advance()?,
                        TokenKind::Eof => {
                            return Err(self.error_at(open, "unclosed '[' (missing ']')"));
                        }
                        _ => return Err(self.unexpected("']'")),
                    }
                }
                _ => break,
            }
        }
        Ok(Node::Path(Path { root, segments }))
    }

    /// The segment for the current token inside `[...]` (not consumed).
    fn bracket_index(&self) -> Result<Segment, ExprError> {
        match &self.current.kind {
            TokenKind::Str(key) => Ok(Segment::Key(key.clone())),
            TokenKind::Num { text, .. } if text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse::<u64>()
                .map(Segment::Index)
                .map_err(|_| self.error_here(format!("bracket index {text} is too large"))),
            TokenKind::Eof => Err(self.unexpected("a string or integer index")),
            other => Err(self.error_here(format!(
                "bracket index must be a string or a non-negative integer, found {}",
                other.describe()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOTS: &[&str] = &["event", "async"];

    fn p(source: &str) -> Node {
        parse(source, ROOTS).unwrap_or_else(|e| panic!("{source:?}: {e}"))
    }

    fn path(root: &str, segments: Vec<Segment>) -> Node {
        Node::Path(Path {
            root: root.into(),
            segments,
        })
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    fn x() -> Node {
        path("event", vec![key("x")])
    }

    fn b(node: Node) -> Box<Node> {
        Box::new(node)
    }

    #[test]
    fn literals() {
        assert_eq!(p("true"), Node::Lit(Value::Bool(true)));
        assert_eq!(p("false"), Node::Lit(Value::Bool(false)));
        assert_eq!(p("null"), Node::Lit(Value::Null));
        assert_eq!(p("'s'"), Node::Lit(Value::String("s".into())));
        assert_eq!(p(" -3 "), Node::Lit(Value::from(-3)));
    }

    #[test]
    fn paths() {
        assert_eq!(p("event"), path("event", vec![]));
        assert_eq!(
            p(r#"async.data["a b"]['c'][0].true"#),
            path(
                "async",
                vec![key("data"), key("a b"), key("c"), Segment::Index(0), key("true")]
            )
        );
        assert_eq!(
            p("event . x [ 1 ]"),
            path("event", vec![key("x"), Segment::Index(1)])
        );
    }

    #[test]
    fn precedence() {
        let y = || path("event", vec![key("y")]);
        // || is looser than &&
        assert_eq!(
            p("event.x || event.x && event.y"),
            Node::Or(vec![x(), Node::And(vec![x(), y()])])
        );
        // && is looser than ==
        assert_eq!(
            p("event.x == 1 && event.y"),
            Node::And(vec![
                Node::Cmp(CmpOp::Eq, b(x()), b(Node::Lit(Value::from(1)))),
                y()
            ])
        );
        // ! binds tighter than ==
        assert_eq!(
            p("!event.x == event.y"),
            Node::Cmp(CmpOp::Eq, b(Node::Not(b(x()))), b(y()))
        );
        // chains stay flat, parentheses nest
        assert_eq!(p("event.x && event.x && event.x"), Node::And(vec![x(), x(), x()]));
        assert_eq!(
            p("(event.x && event.x) && event.x"),
            Node::And(vec![Node::And(vec![x(), x()]), x()])
        );
        assert_eq!(p("((event.x))"), x());
        assert_eq!(p("!!event.x"), Node::Not(b(Node::Not(b(x())))));
        for (op, text) in [
            (CmpOp::Eq, "=="),
            (CmpOp::Ne, "!="),
            (CmpOp::Lt, "<"),
            (CmpOp::Le, "<="),
            (CmpOp::Gt, ">"),
            (CmpOp::Ge, ">="),
        ] {
            assert_eq!(
                p(&format!("event.x {text} null")),
                Node::Cmp(op, b(x()), b(Node::Lit(Value::Null)))
            );
        }
    }

    #[test]
    fn parenthesised_comparisons_may_be_combined() {
        assert_eq!(
            p("(event.x == 1) == true"),
            Node::Cmp(
                CmpOp::Eq,
                b(Node::Cmp(CmpOp::Eq, b(x()), b(Node::Lit(Value::from(1))))),
                b(Node::Lit(Value::Bool(true)))
            )
        );
    }

    #[test]
    fn depth_limit_counts_parens_and_bangs() {
        let ok = format!("{}event.x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok, ROOTS).is_ok());
        let ok = format!("{}event.x", "!".repeat(MAX_DEPTH));
        assert!(parse(&ok, ROOTS).is_ok());
        let mixed = format!("{}{}event.x{}", "!(".repeat(32), "!", ")".repeat(32));
        assert_eq!(parse(&mixed, ROOTS).unwrap_err().column, 65);
    }
}
