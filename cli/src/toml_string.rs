//! Where each character of a TOML string value sits in the file.
//!
//! An expression written in a basic string (`"Join(\" \", a, b)"`) differs
//! from the file text wherever an escape stands, so an error position in
//! the expression must be mapped back through the escapes to point at the
//! right column. Literal strings map one to one.

/// The decoded text of the TOML string literal `raw` (quotes included) and,
/// for each byte of it plus one past the end, the offset in `raw` where
/// that byte's source starts. `None` when `raw` is not a string literal.
pub fn decode(raw: &str) -> Option<(String, Vec<usize>)> {
    let (open, basic) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return None;
    };
    let end = raw.len().checked_sub(open).filter(|e| *e >= open)?;
    let mut text = String::new();
    let mut map = Vec::new();
    let mut i = open;
    // A newline right after a multi-line opening delimiter is not content.
    if open == 3 {
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    let push = |text: &mut String, map: &mut Vec<usize>, c: char, at: usize| {
        for _ in 0..c.len_utf8() {
            map.push(at);
        }
        text.push(c);
    };
    while i < end {
        let c = raw[i..].chars().next()?;
        if !basic || c != '\\' {
            push(&mut text, &mut map, c, i);
            i += c.len_utf8();
            continue;
        }
        let esc = raw[i + 1..].chars().next()?;
        let (decoded, len) = match esc {
            'b' => (Some('\u{8}'), 2),
            't' => (Some('\t'), 2),
            'n' => (Some('\n'), 2),
            'f' => (Some('\u{c}'), 2),
            'r' => (Some('\r'), 2),
            'e' => (Some('\u{1b}'), 2),
            '"' => (Some('"'), 2),
            '\\' => (Some('\\'), 2),
            'u' | 'U' => {
                let digits = if esc == 'u' { 4 } else { 8 };
                let hex = raw.get(i + 2..i + 2 + digits)?;
                (
                    Some(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?),
                    2 + digits,
                )
            }
            // A line-ending backslash in a multi-line string drops the
            // newline and the whitespace that follows.
            ' ' | '\t' | '\r' | '\n' if open == 3 => {
                let rest = &raw[i + 1..end];
                let skipped = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                (None, 1 + skipped)
            }
            _ => return None,
        };
        if let Some(d) = decoded {
            push(&mut text, &mut map, d, i);
        }
        i += len;
    }
    map.push(end);
    Some((text, map))
}

/// Where `text` is written inside `raw` (a TOML value: a string, or an
/// inline table or array holding one): the offset in `raw` of each of its
/// bytes, plus one past its end.
pub fn find(raw: &str, text: &str) -> Option<Vec<usize>> {
    let mut from = 0;
    while let Some(i) = raw[from..].find(['"', '\'']).map(|i| from + i) {
        let end = literal_end(raw, i)?;
        if let Some((decoded, map)) = decode(&raw[i..end]) {
            if let Some(at) = decoded.find(text) {
                return Some(map[at..=at + text.len()].iter().map(|o| i + o).collect());
            }
        }
        from = end;
    }
    None
}

/// The end of the string literal starting at `start` in `raw`.
fn literal_end(raw: &str, start: usize) -> Option<usize> {
    let rest = &raw[start..];
    let delim = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|d| rest.starts_with(d))?;
    let basic = delim.starts_with('"');
    let mut i = start + delim.len();
    while i < raw.len() {
        if basic && raw[i..].starts_with('\\') {
            i += 1 + raw[i + 1..].chars().next()?.len_utf8();
            continue;
        }
        if raw[i..].starts_with(delim) {
            return Some(i + delim.len());
        }
        i += raw[i..].chars().next()?.len_utf8();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw text under the decoded range `from..to`.
    fn raw_of<'a>(raw: &'a str, map: &[usize], from: usize, to: usize) -> &'a str {
        &raw[map[from]..map[to]]
    }

    #[test]
    fn literal_strings_map_one_to_one() {
        let raw = r#"'Join(" ", a)'"#;
        let (text, map) = decode(raw).expect("a string");
        assert_eq!(text, r#"Join(" ", a)"#);
        assert_eq!(raw_of(raw, &map, 10, 11), "a");
    }

    #[test]
    fn escapes_in_basic_strings_map_to_their_source() {
        let raw = r#""Join(\" \", bogus(1)) + \u00e9""#;
        let (text, map) = decode(raw).expect("a string");
        assert_eq!(text, r#"Join(" ", bogus(1)) + é"#);
        let at = text.find("bogus").expect("bogus");
        assert_eq!(raw_of(raw, &map, at, at + 5), "bogus");
        let e = text.find('é').expect("é");
        assert_eq!(raw_of(raw, &map, e, e + 'é'.len_utf8()), r"\u00e9");
    }

    #[test]
    fn multi_line_strings_drop_the_first_newline_and_line_continuations() {
        let raw = "\"\"\"\nIIF(a, \\\n    b, c)\"\"\"";
        let (text, map) = decode(raw).expect("a string");
        assert_eq!(text, "IIF(a, b, c)");
        let b = text.find('b').expect("b");
        assert_eq!(raw_of(raw, &map, b, b + 1), "b");
        let raw = "'''\nLower(x)'''";
        let (text, map) = decode(raw).expect("a string");
        assert_eq!(text, "Lower(x)");
        assert_eq!(raw_of(raw, &map, 0, 5), "Lower");
    }

    #[test]
    fn text_is_found_inside_an_inline_table() {
        let raw = r#"{ expr = "Lower(\"x\") + bogus", initial_only = true }"#;
        let map = find(raw, "bogus").expect("found");
        assert_eq!(&raw[map[0]..map[5]], "bogus");
        let raw = r#"{ cs = 'id', mv = "Join(\" \", id)" }"#;
        let map = find(raw, r#"Join(" ", id)"#).expect("found");
        assert_eq!(&raw[map[0]..map[13]], r#"Join(\" \", id)"#);
        assert!(find(raw, "absent").is_none());
    }

    #[test]
    fn non_strings_and_broken_escapes_are_refused() {
        assert!(decode("42").is_none());
        assert!(decode(r#""\q""#).is_none());
        assert!(decode(r#""\u12""#).is_none());
    }
}
