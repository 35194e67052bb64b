//! Tokenizer for the expression language.
//!
//! The lexer works on Unicode scalar values (`char`s) so that every token
//! carries the 1-based *character* column at which it starts; error messages
//! refer to those columns. Tokens are produced lazily, one at a time, so the
//! parser always reports the leftmost problem in the source.

use serde_json::Number;

use super::{error_at, ExprError};

/// The kind (and payload) of one token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// `[A-Za-z_][A-Za-z0-9_]*`; keywords (`true`, `false`, `null`) are
    /// identifiers too and are told apart by the parser, so that they can
    /// still be used as field names after a `.`.
    Ident(String),
    /// A string literal with its escapes already decoded.
    Str(String),
    /// A number literal: its value and its exact source text.
    Num {
        value: Number,
        text: String,
    },
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Question,
    Colon,
    /// End of the source text.
    Eof,
}

impl TokenKind {
    /// A short human description used in "unexpected ..." messages.
    pub(super) fn describe(&self) -> String {
        let punct = match self {
            TokenKind::Ident(name) => return format!("name '{name}'"),
            TokenKind::Str(s) => return format!("string {s:?}"),
            TokenKind::Num { text, .. } => return format!("number {text}"),
            TokenKind::Eof => return "end of expression".to_string(),
            TokenKind::Dot => ".",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::EqEq => "==",
            TokenKind::NotEq => "!=",
            TokenKind::Lt => "<",
            TokenKind::Le => "<=",
            TokenKind::Gt => ">",
            TokenKind::Ge => ">=",
            TokenKind::AndAnd => "&&",
            TokenKind::OrOr => "||",
            TokenKind::Bang => "!",
            TokenKind::Question => "?",
            TokenKind::Colon => ":",
        };
        format!("'{punct}'")
    }
}

/// One token and the 1-based character column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    pub(super) column: usize,
}

/// Produces tokens on demand from a source string.
pub(super) struct Lexer<'s> {
    source: &'s str,
    chars: Vec<char>,
    pos: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer positioned at the start of `source`.
    pub(super) fn new(source: &'s str) -> Self {
        Lexer {
            source,
            chars: source.chars().collect(),
            pos: 0,
        }
    }

    fn error(&self, column: usize, message: impl Into<String>) -> ExprError {
        error_at(self.source, column, message)
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    /// The next token, or the error describing why there is none.
    /// After the end of input this keeps returning [`TokenKind::Eof`].
    pub(super) fn next_token(&mut self) -> Result<Token, ExprError> {
        while self.peek_at(0).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        let column = self.pos + 1;
        let Some(c) = self.peek_at(0) else {
            return Ok(Token {
                kind: TokenKind::Eof,
                column,
            });
        };
        let next = self.peek_at(1);
        let (kind, width) = match c {
            '.' => (TokenKind::Dot, 1),
            '[' => (TokenKind::LBracket, 1),
            ']' => (TokenKind::RBracket, 1),
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            '?' => (TokenKind::Question, 1),
            ':' => (TokenKind::Colon, 1),
            '=' if next == Some('=') => (TokenKind::EqEq, 2),
            '=' => return Err(self.error(column, "unexpected '=': use == to compare")),
            '!' if next == Some('=') => (TokenKind::NotEq, 2),
            '!' => (TokenKind::Bang, 1),
            '<' if next == Some('=') => (TokenKind::Le, 2),
            '<' => (TokenKind::Lt, 1),
            '>' if next == Some('=') => (TokenKind::Ge, 2),
            '>' => (TokenKind::Gt, 1),
            '&' if next == Some('&') => (TokenKind::AndAnd, 2),
            '&' => return Err(self.error(column, "unexpected '&': use && for logical and")),
            '|' if next == Some('|') => (TokenKind::OrOr, 2),
            '|' => return Err(self.error(column, "unexpected '|': use || for logical or")),
            '"' | '\'' => return self.string(c, column),
            '0'..='9' => return self.number(column),
            '-' if next.is_some_and(|d| d.is_ascii_digit()) => return self.number(column),
            '-' => {
                return Err(self.error(
                    column,
                    "unexpected character '-' (a minus sign is only allowed directly before a number)",
                ))
            }
            c if c.is_ascii_alphabetic() || c == '_' => return Ok(self.ident(column)),
            other => {
                return Err(self.error(column, format!("unexpected character {other:?}")));
            }
        };
        self.pos += width;
        Ok(Token { kind, column })
    }

    fn ident(&mut self, column: usize) -> Token {
        let start = self.pos;
        while self
            .peek_at(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        Token {
            kind: TokenKind::Ident(self.chars[start..self.pos].iter().collect()),
            column,
        }
    }

    fn count_digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`, not directly
    /// followed by a letter, digit, `_` or `.`.
    fn number(&mut self, column: usize) -> Result<Token, ExprError> {
        let start = self.pos;
        if self.peek_at(0) == Some('-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.count_digits();
        let mut valid = int_digits > 0 && !(int_digits > 1 && self.chars[int_start] == '0');
        let mut is_integer = true;
        if self.peek_at(0) == Some('.') {
            is_integer = false;
            self.pos += 1;
            valid &= self.count_digits() > 0;
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            is_integer = false;
            self.pos += 1;
            if matches!(self.peek_at(0), Some('+' | '-')) {
                self.pos += 1;
            }
            valid &= self.count_digits() > 0;
        }
        // Swallow anything glued to the number so that `1abc` or `1.2.3`
        // is reported as one invalid number rather than two tokens.
        while self
            .peek_at(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            valid = false;
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if !valid {
            return Err(self.error(column, format!("invalid number '{text}'")));
        }
        let integer = if is_integer {
            text.parse::<i64>()
                .ok()
                .map(Number::from)
                .or_else(|| text.parse::<u64>().ok().map(Number::from))
        } else {
            None
        };
        let value = match integer {
            Some(n) => n,
            None => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .ok_or_else(|| self.error(column, format!("invalid number '{text}': out of range")))?,
        };
        Ok(Token {
            kind: TokenKind::Num { value, text },
            column,
        })
    }

    fn string(&mut self, quote: char, column: usize) -> Result<Token, ExprError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_at(0) else {
                return Err(self.error(column, format!("unterminated string (missing closing {quote})")));
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let escape_column = self.pos; // column of the backslash
            let Some(e) = self.peek_at(0) else {
                return Err(self.error(column, format!("unterminated string (missing closing {quote})")));
            };
            self.pos += 1;
            match e {
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => out.push(self.unicode_escape(escape_column)?),
                other => {
                    return Err(self.error(
                        escape_column,
                        format!(
                            "invalid escape sequence '\\{}' in string \
                             (allowed: \\\\ \\' \\\" \\n \\t \\r \\uXXXX)",
                            other.escape_debug()
                        ),
                    ))
                }
            }
        }
        Ok(Token {
            kind: TokenKind::Str(out),
            column,
        })
    }

    /// Reads the `XXXX` of `\uXXXX` (the `\u` is already consumed), joining a
    /// UTF-16 surrogate pair written as two escapes.
    fn unicode_escape(&mut self, escape_column: usize) -> Result<char, ExprError> {
        let high = self.hex4(escape_column)?;
        let code = match high {
            0xD800..=0xDBFF => {
                if self.peek_at(0) != Some('\\') || self.peek_at(1) != Some('u') {
                    return Err(self.unpaired_surrogate(escape_column));
                }
                self.pos += 2;
                let low = self.hex4(escape_column)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.unpaired_surrogate(escape_column));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.unpaired_surrogate(escape_column)),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.unpaired_surrogate(escape_column))
    }

    fn unpaired_surrogate(&self, escape_column: usize) -> ExprError {
        self.error(
            escape_column,
            "invalid escape sequence: unpaired UTF-16 surrogate in \\u escape",
        )
    }

    fn hex4(&mut self, escape_column: usize) -> Result<u32, ExprError> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self.peek_at(0).and_then(|c| c.to_digit(16)).ok_or_else(|| {
                self.error(
                    escape_column,
                    "invalid escape sequence: \\u must be followed by 4 hex digits",
                )
            })?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Result<Vec<TokenKind>, ExprError> {
        let mut lexer = Lexer::new(source);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token()?;
            if token.kind == TokenKind::Eof {
                return Ok(out);
            }
            out.push(token.kind);
        }
    }

    fn num(source: &str) -> Number {
        match kinds(source).as_deref() {
            Ok([TokenKind::Num { value, text }]) => {
                assert_eq!(text, source);
                value.clone()
            }
            other => panic!("not a single number: {other:?}"),
        }
    }

    fn string(source: &str) -> String {
        match kinds(source).as_deref() {
            Ok([TokenKind::Str(s)]) => s.clone(),
            other => panic!("not a single string: {other:?}"),
        }
    }

    fn err(source: &str) -> (usize, String) {
        match kinds(source) {
            Err(e) => (e.column, e.message),
            Ok(tokens) => panic!("expected an error for {source:?}, got {tokens:?}"),
        }
    }

    #[test]
    fn punctuation_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds(". [ ] ( ) == != < <= > >= && || !").unwrap(),
            vec![Dot, LBracket, RBracket, LParen, RParen, EqEq, NotEq, Lt, Le, Gt, Ge, AndAnd, OrOr, Bang]
        );
        assert_eq!(kinds("!!=").unwrap(), vec![Bang, NotEq]);
        assert_eq!(kinds("<==").unwrap_err().column, 3);
    }

    #[test]
    fn columns_are_character_based() {
        let mut lexer = Lexer::new("  é");
        assert_eq!(lexer.next_token().unwrap_err().column, 3);
        let mut lexer = Lexer::new("'é' x");
        assert_eq!(lexer.next_token().unwrap().column, 1);
        assert_eq!(lexer.next_token().unwrap().column, 5);
        let eof = lexer.next_token().unwrap();
        assert_eq!((eof.kind, eof.column), (TokenKind::Eof, 6));
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::Eof);
    }

    #[test]
    fn identifiers() {
        assert_eq!(
            kinds("_a1 B_2 true").unwrap(),
            vec![
                TokenKind::Ident("_a1".into()),
                TokenKind::Ident("B_2".into()),
                TokenKind::Ident("true".into())
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(num("42"), Number::from(42));
        assert_eq!(num("-3"), Number::from(-3));
        assert_eq!(num("0"), Number::from(0));
        assert_eq!(num("2.5").as_f64(), Some(2.5));
        assert_eq!(num("1e3").as_f64(), Some(1000.0));
        assert!(num("1e3").is_f64());
        assert_eq!(num("-0.5e-2").as_f64(), Some(-0.005));
        assert_eq!(num("1E+2").as_f64(), Some(100.0));
        assert_eq!(num("18446744073709551615"), Number::from(u64::MAX));
        assert!(num("18446744073709551616").is_f64());
    }

    #[test]
    fn invalid_numbers() {
        for bad in ["1.", "01", "-01", "1e", "1e+", "1abc", "1.2.3", "1_000", "1.e5"] {
            let (column, message) = err(bad);
            assert_eq!(column, 1, "{bad}");
            assert_eq!(message, format!("invalid number '{bad}'"));
        }
        let (column, message) = err("x == 1e999");
        assert_eq!(column, 6);
        assert_eq!(message, "invalid number '1e999': out of range");
    }

    #[test]
    fn minus_needs_a_digit() {
        let (column, message) = err("x == - 1");
        assert_eq!(column, 6);
        assert!(message.starts_with("unexpected character '-'"), "{message}");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(string(r#""a b""#), "a b");
        assert_eq!(string("'a\"b'"), "a\"b");
        assert_eq!(string(r#""\\ \' \" \n \t \r""#), "\\ ' \" \n \t \r");
        assert_eq!(string(r"'\u00e9\u0041'"), "éA");
        assert_eq!(string(r"'\ud83d\ude00'"), "😀");
        assert_eq!(string("'raw\nnewline é'"), "raw\nnewline é");
    }

    #[test]
    fn string_errors() {
        assert_eq!(
            err(r#"x == "abc"#),
            (6, "unterminated string (missing closing \")".into())
        );
        assert_eq!(
            err(r"'abc\"),
            (1, "unterminated string (missing closing ')".into())
        );
        let (column, message) = err(r#""a\q""#);
        assert_eq!(column, 3);
        assert!(message.starts_with(r"invalid escape sequence '\q'"), "{message}");
        assert_eq!(err(r"'\u12'").0, 2);
        assert_eq!(err(r"'\u12").0, 2);
        assert_eq!(err(r"'ab\uzzzz'").0, 4);
        let (column, message) = err(r"'\ud83d'");
        assert_eq!(column, 2);
        assert!(message.contains("surrogate"), "{message}");
        assert_eq!(err(r"'\ude00'").0, 2);
        assert_eq!(err(r"'\ud83d\u0041'").0, 2);
    }

    #[test]
    fn operator_hints() {
        assert_eq!(err("a = b"), (3, "unexpected '=': use == to compare".into()));
        assert_eq!(err("a & b"), (3, "unexpected '&': use && for logical and".into()));
        assert_eq!(err("a | b"), (3, "unexpected '|': use || for logical or".into()));
    }

    #[test]
    fn unexpected_characters_are_named() {
        assert_eq!(err("a # b"), (3, "unexpected character '#'".into()));
        assert_eq!(err("a\u{7}"), (2, "unexpected character '\\u{7}'".into()));
        assert_eq!(err("日本"), (1, "unexpected character '日'".into()));
    }
}
