//! Turns expression text into tokens with byte spans. Spans always fall on
//! character boundaries.

use std::iter::Peekable;
use std::str::CharIndices;

use crate::{ParseError, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok<'s> {
    /// A bare name: an attribute, a function name or a keyword.
    Ident(&'s str),
    /// A bracketed attribute name, without the brackets.
    Attr(&'s str),
    /// A variable, `$item`, without the `$`.
    Var(&'s str),
    /// A string literal, escapes resolved.
    Str(String),
    /// An unsigned integer literal (decimal, or `&H` hexadecimal); the
    /// parser applies a leading `-`.
    Int(u64),
    /// A decimal number with a fraction (`1.5`), as written.
    Decimal(&'s str),
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    /// `&`: string concatenation (Entra Connect's operator).
    Amp,
    Bang,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Eof,
}

#[derive(Clone, Debug)]
pub(super) struct Token<'s> {
    pub(super) tok: Tok<'s>,
    pub(super) span: Span,
}

impl Tok<'_> {
    /// The token as error messages name it.
    pub(super) fn describe(&self) -> String {
        let fixed = match self {
            Tok::Ident(name) => return format!("`{name}`"),
            Tok::Attr(name) => return format!("`[{name}]`"),
            Tok::Var(name) => return format!("`${name}`"),
            Tok::Str(_) => "a string",
            Tok::Int(n) => return format!("`{n}`"),
            Tok::Decimal(d) => return format!("`{d}`"),
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::Comma => "`,`",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Star => "`*`",
            Tok::Amp => "`&`",
            Tok::Bang => "`!`",
            Tok::EqEq => "`==`",
            Tok::NotEq => "`!=`",
            Tok::Lt => "`<`",
            Tok::Le => "`<=`",
            Tok::Gt => "`>`",
            Tok::Ge => "`>=`",
            Tok::AndAnd => "`&&`",
            Tok::OrOr => "`||`",
            Tok::Eof => "the end of the expression",
        };
        fixed.to_owned()
    }
}

fn error(code: &'static str, message: impl Into<String>, span: Span) -> ParseError {
    ParseError {
        code,
        message: message.into(),
        span,
    }
}

struct Lexer<'s> {
    src: &'s str,
    chars: Peekable<CharIndices<'s>>,
}

impl<'s> Lexer<'s> {
    /// Consumes the next character if it is `want`.
    fn eat(&mut self, want: char) -> bool {
        self.chars.next_if(|&(_, c)| c == want).is_some()
    }

    /// The byte offset of the next character (the source length at the end).
    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.src.len(), |&(i, _)| i)
    }

    fn string(&mut self, start: usize, quote: char) -> Result<Tok<'s>, ParseError> {
        let unterminated = |src: &str| {
            error(
                "unterminated-string",
                format!("unterminated string: expected a closing {quote}"),
                start..src.len(),
            )
        };
        let mut value = String::new();
        loop {
            match self.chars.next() {
                None => return Err(unterminated(self.src)),
                Some((_, c)) if c == quote => return Ok(Tok::Str(value)),
                Some((at, '\\')) => match self.chars.next() {
                    None => return Err(unterminated(self.src)),
                    Some((_, c @ ('"' | '\'' | '\\'))) => value.push(c),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((escaped_at, other)) => {
                        return Err(error(
                            "bad-escape",
                            format!(
                            "unknown escape `\\{other}`: expected one of \\\" \\' \\\\ \\n \\r \\t"
                        ),
                            at..escaped_at + other.len_utf8(),
                        ))
                    }
                },
                Some((_, c)) => value.push(c),
            }
        }
    }

    fn bracketed(&mut self, start: usize) -> Result<Tok<'s>, ParseError> {
        for (at, c) in self.chars.by_ref() {
            if c == ']' {
                let name = &self.src[start + 1..at];
                if name.is_empty() {
                    return Err(error(
                        "empty-attribute",
                        "expected an attribute name between `[` and `]`",
                        start..at + 1,
                    ));
                }
                return Ok(Tok::Attr(name));
            }
        }
        Err(error(
            "unterminated-attribute",
            "unterminated attribute name: expected a closing `]`",
            start..self.src.len(),
        ))
    }

    fn number(&mut self, start: usize) -> Result<Tok<'s>, ParseError> {
        while self.chars.next_if(|(_, c)| c.is_ascii_digit()).is_some() {}
        let end = self.offset();
        // A fraction: `1.5` (a `.` followed by a digit).
        if self.src[end..].starts_with('.')
            && self.src[end + 1..].starts_with(|c: char| c.is_ascii_digit())
        {
            self.chars.next();
            while self.chars.next_if(|(_, c)| c.is_ascii_digit()).is_some() {}
            return Ok(Tok::Decimal(&self.src[start..self.offset()]));
        }
        let digits = &self.src[start..end];
        digits.parse().map(Tok::Int).map_err(|_| {
            error(
                "int-overflow",
                format!(
                    "integer {digits} is too large: integers are 64-bit, at most {}",
                    i64::MAX
                ),
                start..end,
            )
        })
    }

    /// `&H1F`: a hexadecimal integer, when everything after `&H` up to the
    /// next non-word character is hexadecimal digits (else `&` is the
    /// concatenation operator and `H…` a name).
    fn hex(&mut self, start: usize) -> Option<Result<Tok<'s>, ParseError>> {
        let rest = &self.src[start + 1..];
        let digits_from = start + 2;
        if !rest.starts_with(['H', 'h']) {
            return None;
        }
        let word: &str = self.src[digits_from..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        if word.is_empty() || !word.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        for _ in 0..word.len() + 1 {
            self.chars.next();
        }
        let end = digits_from + word.len();
        Some(u64::from_str_radix(word, 16).map(Tok::Int).map_err(|_| {
            error(
                "int-overflow",
                format!("hexadecimal integer &H{word} is too large: integers are 64-bit"),
                start..end,
            )
        }))
    }

    fn ident(&mut self, start: usize) -> Tok<'s> {
        let word = |l: &mut Self| {
            while l
                .chars
                .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                .is_some()
            {}
        };
        word(self);
        let end = self.offset();
        // `target.name`: the target object's own value, in an outbound flow
        // (see `rule::target_attribute`). One attribute token.
        if &self.src[start..end] == "target"
            && self.src[end..].starts_with('.')
            && self.src[end + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            self.chars.next();
            word(self);
            return Tok::Attr(&self.src[start..self.offset()]);
        }
        Tok::Ident(&self.src[start..end])
    }

    fn next_token(&mut self) -> Result<Option<Token<'s>>, ParseError> {
        let (start, c) = loop {
            match self.chars.next() {
                None => return Ok(None),
                Some((_, c)) if c.is_whitespace() => continue,
                Some(next) => break next,
            }
        };
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '!' if self.eat('=') => Tok::NotEq,
            '!' => Tok::Bang,
            // `=` and `==` compare alike (VBScript's `=`, as the Entra
            // references write it); `<>` is `!=`.
            '=' => {
                self.eat('=');
                Tok::EqEq
            }
            '<' if self.eat('=') => Tok::Le,
            '<' if self.eat('>') => Tok::NotEq,
            '<' => Tok::Lt,
            '*' => Tok::Star,
            '>' if self.eat('=') => Tok::Ge,
            '>' => Tok::Gt,
            '&' if self.eat('&') => Tok::AndAnd,
            '&' => match self.hex(start) {
                Some(hex) => hex?,
                None => Tok::Amp,
            },
            '|' if self.eat('|') => Tok::OrOr,
            '"' | '\'' => self.string(start, c)?,
            '[' => self.bracketed(start)?,
            '$' if self.src[start + 1..]
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') =>
            {
                while self
                    .chars
                    .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                    .is_some()
                {}
                Tok::Var(&self.src[start + 1..self.offset()])
            }
            '0'..='9' => self.number(start)?,
            c if c.is_ascii_alphabetic() || c == '_' => self.ident(start),
            other => {
                let span = start..start + other.len_utf8();
                let message = match other {
                    '|' => "unexpected `|`: write `||` for a logical or".to_owned(),
                    c if c.is_alphabetic() => format!(
                        "unexpected character `{c}`: names with characters other than ASCII \
                         letters, digits and `_` must be bracketed, as in [name]"
                    ),
                    c => format!("unexpected character `{}`", c.escape_debug()),
                };
                return Err(error("unexpected-character", message, span));
            }
        };
        let end = self.offset();
        Ok(Some(Token {
            tok,
            span: start..end,
        }))
    }
}

/// The tokens of `src`, ending with exactly one `Eof` token.
pub(super) fn lex(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer {
        src,
        chars: src.char_indices().peekable(),
    };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    tokens.push(Token {
        tok: Tok::Eof,
        span: src.len()..src.len(),
    });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::{lex, Tok};

    fn toks(src: &str) -> Vec<Tok<'_>> {
        lex(src)
            .map(|ts| ts.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn operators_and_literals() {
        assert_eq!(
            toks("a==b!=c<=d>=e<f>g&&h||!i+-1"),
            vec![
                Tok::Ident("a"),
                Tok::EqEq,
                Tok::Ident("b"),
                Tok::NotEq,
                Tok::Ident("c"),
                Tok::Le,
                Tok::Ident("d"),
                Tok::Ge,
                Tok::Ident("e"),
                Tok::Lt,
                Tok::Ident("f"),
                Tok::Gt,
                Tok::Ident("g"),
                Tok::AndAnd,
                Tok::Ident("h"),
                Tok::OrOr,
                Tok::Bang,
                Tok::Ident("i"),
                Tok::Plus,
                Tok::Minus,
                Tok::Int(1),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks(r#"'it\'s' "a\"b\\c\n\t\r" [mS-DS-ConsistencyGuid]"#),
            vec![
                Tok::Str("it's".into()),
                Tok::Str("a\"b\\c\n\t\r".into()),
                Tok::Attr("mS-DS-ConsistencyGuid"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges_on_char_boundaries() {
        let tokens = lex("\"é\" + [名前]").unwrap_or_default();
        let spans: Vec<_> = tokens.iter().map(|t| t.span.clone()).collect();
        assert_eq!(spans, vec![0..4, 5..6, 7..15, 15..15]);
    }

    #[test]
    fn errors() {
        let err = |src| lex(src).map(|_| ()).expect_err("an error");
        assert_eq!(
            (err("\"abc").code, err("\"abc").span),
            ("unterminated-string", 0..4)
        );
        assert_eq!(
            (err("x + 'é\\").code, err("x + 'é\\").span),
            ("unterminated-string", 4..8)
        );
        assert_eq!(
            (err("\"a\\qb\"").code, err("\"a\\qb\"").span),
            ("bad-escape", 2..4)
        );
        assert_eq!(
            (err("\"\\é\"").code, err("\"\\é\"").span),
            ("bad-escape", 1..4)
        );
        assert_eq!(
            (err("[abc").code, err("[abc").span),
            ("unterminated-attribute", 0..4)
        );
        assert_eq!(
            (err("x + []").code, err("x + []").span),
            ("empty-attribute", 4..6)
        );
        assert_eq!(
            (err("a | b").code, err("a | b").span),
            ("unexpected-character", 2..3)
        );
        assert_eq!(
            (err("x + é").code, err("x + é").span),
            ("unexpected-character", 4..6)
        );
        assert!(err("x + é").message.contains("bracketed"));
        assert_eq!(
            (err("1.").code, err("1.").span),
            ("unexpected-character", 1..2)
        );
        assert_eq!(err("99999999999999999999").code, "int-overflow");
        assert_eq!(err("&H10000000000000000").code, "int-overflow");
    }

    #[test]
    fn entra_operators_and_literals() {
        assert_eq!(
            toks("a=b<>c&d*e&H1F&hff 1.25 &Hello"),
            vec![
                Tok::Ident("a"),
                Tok::EqEq,
                Tok::Ident("b"),
                Tok::NotEq,
                Tok::Ident("c"),
                Tok::Amp,
                Tok::Ident("d"),
                Tok::Star,
                Tok::Ident("e"),
                Tok::Int(0x1F),
                Tok::Int(0xFF),
                Tok::Decimal("1.25"),
                Tok::Amp,
                Tok::Ident("Hello"),
                Tok::Eof,
            ]
        );
    }
}
