//! A row's anchor from its key columns: the key's text for a one-column key;
//! for a composite key the parts joined by `|`, with `\` escaping a `|` or a
//! `\` inside a part (`ACME|E1001`), so every key has exactly one anchor and
//! every anchor splits back into its parts.

use rules::Value;

/// The anchor of a key, or `None` when a key column is null.
pub(crate) fn encode(parts: &[&Value]) -> Option<String> {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if part.is_null() {
            return None;
        }
        let text = part.to_string();
        if parts.len() == 1 {
            return Some(text);
        }
        if i > 0 {
            out.push('|');
        }
        for c in text.chars() {
            if matches!(c, '|' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    Some(out)
}

/// An anchor split back into its `n` parts, or `None` when it has another
/// number of parts.
pub(crate) fn decode(anchor: &str, n: usize) -> Option<Vec<String>> {
    if n == 1 {
        return Some(vec![anchor.to_owned()]);
    }
    let mut parts = vec![String::new()];
    let mut chars = anchor.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.last_mut()?.push(chars.next()?),
            '|' => parts.push(String::new()),
            c => parts.last_mut()?.push(c),
        }
    }
    (parts.len() == n).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_anchors_round_trip_with_separators_inside_parts() {
        let parts = [Value::str("AC|ME"), Value::str("E\\1"), Value::Int(7)];
        let refs: Vec<&Value> = parts.iter().collect();
        let anchor = encode(&refs).expect("no null part");
        assert_eq!(anchor, "AC\\|ME|E\\\\1|7");
        assert_eq!(
            decode(&anchor, 3),
            Some(vec!["AC|ME".to_owned(), "E\\1".to_owned(), "7".to_owned()])
        );
        assert_eq!(decode(&anchor, 2), None);
    }

    #[test]
    fn a_single_key_is_its_text_and_a_null_part_has_no_anchor() {
        assert_eq!(encode(&[&Value::Int(42)]).as_deref(), Some("42"));
        assert_eq!(encode(&[&Value::str("a|b")]).as_deref(), Some("a|b"));
        assert_eq!(encode(&[&Value::str("a"), &Value::Null]), None);
    }
}
