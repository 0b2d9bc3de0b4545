//! The boxed text tables the CLI prints: a header, a double rule, then the
//! rows, each column as wide as its widest line (display width, so wide
//! characters line up), one space of padding either side, and no wrapping.
//! A cell holding newlines takes as many lines as it holds.
//!
//! Written out directly, a line at a time: `preview` prints millions of
//! rows through it.

use std::fmt::{self, Write as _};

use unicode_width::UnicodeWidthStr;

/// A table of text cells.
#[derive(Debug)]
pub(crate) struct TextTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The characters of one horizontal rule: left, fill, between, right.
struct Rule(char, char, char, char);

const TOP: Rule = Rule('┌', '─', '┬', '┐');
const UNDER_HEADER: Rule = Rule('╞', '═', '╪', '╡');
const BOTTOM: Rule = Rule('└', '─', '┴', '┘');

impl TextTable {
    /// An empty table with these column names.
    pub(crate) fn new(header: &[&str]) -> TextTable {
        TextTable {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; a row shorter than the widest has empty cells at its end.
    pub(crate) fn add_row(&mut self, row: Vec<String>) -> &mut TextTable {
        self.rows.push(row);
        self
    }

    /// The content width of each column: its widest line, at least 1.
    fn widths(&self) -> Vec<usize> {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![1; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                for line in cell.split('\n') {
                    *width = (*width).max(line.width());
                }
            }
        }
        widths
    }
}

fn rule(f: &mut fmt::Formatter<'_>, widths: &[usize], rule: &Rule) -> fmt::Result {
    f.write_char(rule.0)?;
    for (i, width) in widths.iter().enumerate() {
        if i > 0 {
            f.write_char(rule.2)?;
        }
        for _ in 0..width + 2 {
            f.write_char(rule.1)?;
        }
    }
    f.write_char(rule.3)
}

/// One row, as many lines as its tallest cell, each line ending in `\n`.
fn row(f: &mut fmt::Formatter<'_>, widths: &[usize], cells: &[String]) -> fmt::Result {
    let height = cells
        .iter()
        .map(|c| c.split('\n').count())
        .max()
        .unwrap_or(1);
    let mut lines: Vec<std::str::Split<'_, char>> = cells.iter().map(|c| c.split('\n')).collect();
    for _ in 0..height {
        f.write_char('│')?;
        for (i, width) in widths.iter().enumerate() {
            if i > 0 {
                f.write_char('┆')?;
            }
            let text = lines.get_mut(i).and_then(Iterator::next).unwrap_or("");
            write!(
                f,
                " {text}{:pad$} ",
                "",
                pad = width - text.width().min(*width)
            )?;
        }
        f.write_str("│\n")?;
    }
    Ok(())
}

impl fmt::Display for TextTable {
    /// The table's lines, the last without a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        rule(f, &widths, &TOP)?;
        f.write_char('\n')?;
        row(f, &widths, &self.header)?;
        rule(f, &widths, &UNDER_HEADER)?;
        f.write_char('\n')?;
        for cells in &self.rows {
            row(f, &widths, cells)?;
        }
        rule(f, &widths, &BOTTOM)
    }
}

#[cfg(test)]
mod tests {
    use super::TextTable;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_line_in_display_width() {
        let mut t = TextTable::new(&["name", "value"]);
        t.add_row(cells(&["日本語", "x"]))
            .add_row(cells(&["two\nlines here", "one"]))
            .add_row(cells(&["short"]))
            .add_row(cells(&["a", "b", "extra"]))
            .add_row(cells(&["", "e\u{301}"]))
            .add_row(cells(&["", "", "日本語日本語"]));
        // The layout comfy-table's UTF8_FULL_CONDENSED preset printed,
        // which this table replaced.
        let expected = "\
┌────────────┬───────┬──────────────┐
│ name       ┆ value ┆              │
╞════════════╪═══════╪══════════════╡
│ 日本語     ┆ x     ┆              │
│ two        ┆ one   ┆              │
│ lines here ┆       ┆              │
│ short      ┆       ┆              │
│ a          ┆ b     ┆ extra        │
│            ┆ e\u{301}     ┆              │
│            ┆       ┆ 日本語日本語 │
└────────────┴───────┴──────────────┘";
        assert_eq!(t.to_string(), expected);
    }

    #[test]
    fn a_table_without_rows_is_its_header_between_rules() {
        assert_eq!(
            TextTable::new(&["a", "bb"]).to_string(),
            "┌───┬────┐\n│ a ┆ bb │\n╞═══╪════╡\n└───┴────┘"
        );
        assert_eq!(
            TextTable::new(&["", ""])
                .add_row(cells(&["", ""]))
                .to_string(),
            "┌───┬───┐\n│   ┆   │\n╞═══╪═══╡\n│   ┆   │\n└───┴───┘"
        );
    }
}
