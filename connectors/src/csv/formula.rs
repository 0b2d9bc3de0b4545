//! Spreadsheet safety: a cell a spreadsheet would evaluate as a formula
//! (CSV injection: `=HYPERLINK(…)`, `+cmd|…`, `-2+3`, `@SUM(…)`, or one
//! starting with a tab or carriage return) is written with a leading `'`,
//! which spreadsheets show as text and do not evaluate. A cell that starts
//! with `'` itself gets one more, so the mapping is reversible: import takes
//! one leading `'` off a cell whose next character is one of these or `'`,
//! and every value reads back as it was exported.

use std::borrow::Cow;

/// The first characters that make a spreadsheet evaluate a cell.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn needs_quote(text: &str) -> bool {
    text.starts_with(TRIGGERS) || text.starts_with('\'')
}

/// The cell as written to a file meant for people.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if needs_quote(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The value of a cell written by [`escape`].
pub(crate) fn unescape(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_every_value_reads_back() {
        for (value, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("'=quoted", "''=quoted"),
            ("'plain", "''plain"),
            ("Ada", "Ada"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(escape(value), written, "{value:?}");
            assert_eq!(unescape(written), value, "{written:?}");
        }
    }
}
