//! Errors of the rule language. Every error carries a stable code and the
//! byte span in the expression source that it is about, so the CLI can point
//! a caret at the character.

use std::ops::Range;

/// A byte range in an expression's source text.
pub type Span = Range<usize>;

/// An expression that does not parse, or names an unknown function, or calls
/// a function with the wrong number of arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// A stable, kebab-case code such as `unexpected-token`, `unknown-function`, `arity`.
    pub code: &'static str,
    /// What is wrong, in words, naming what was expected.
    pub message: String,
    /// Where in the source text.
    pub span: Span,
}

/// An expression that parsed but failed while evaluating against one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// A stable, kebab-case code such as `type-mismatch`, `bad-argument`.
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// The part of the expression that failed.
    pub span: Span,
}

/// The 1-based (line, column) of a byte offset in `source`, counting columns in characters.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("é+x", 3), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
    }
}
