//! Every deserialisation error of a TOML document at once, in plain words.
//!
//! serde stops at the first error, so [`collect`] deserialises again and
//! again: each time it records the error, takes the item the error is
//! about out of the document (the innermost key/value or array element
//! whose text holds the error's position) and tries once more, until the
//! rest deserialises (or [`MAX_ERRORS`] are reported). The caller gets the
//! value built from what remained, every error, and what was removed and
//! why, so it can skip the judgements that would need a removed item.
//!
//! A `missing field` error about a key this loop removed itself is not
//! reported: the key was there (its own error says what is wrong with it);
//! the table or element lacking it is removed instead.
//!
//! serde's messages are rewritten for people ([`plain`]):
//! `invalid type: string "500", expected usize` becomes
//! `expected a whole number, found the string "500"`.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// How many errors are reported at most.
pub(crate) const MAX_ERRORS: usize = 100;

/// How many times the document is deserialised at most (a reported error
/// may take a few more rounds: the tables that lacked what was removed).
const MAX_ROUNDS: usize = 4 * MAX_ERRORS;

/// One step from a table or array to what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key of a table or inline table.
    Key(String),
    /// An element of an array or array of tables.
    Index(usize),
}

impl Seg {
    /// The key, when this step is one.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Seg::Key(k) => Some(k),
            Seg::Index(_) => None,
        }
    }
}

/// Why an item was taken out of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A key its table does not have: it meant nothing, so nothing is lost.
    UnknownKey,
    /// A value that could not be read (wrong type or value).
    Unreadable,
    /// A table or element without a key it needs (missing from the file,
    /// or removed because it could not be read).
    Incomplete,
}

/// An item taken out of the document.
#[derive(Debug, Clone)]
pub(crate) struct Removal {
    /// Where it was, in the document as it was then (array indices count
    /// only the elements not removed before).
    pub path: Vec<Seg>,
    pub cause: Cause,
    /// The document's entry holding it (the item at the first two steps of
    /// `path`, such as `rules[2]` or `connectors.hr`) as it was just before
    /// the removal; `None` when the removed item is that entry's section.
    pub entry: Option<Item>,
}

/// One deserialisation error, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TomlError {
    /// Where, when known.
    pub span: Option<Range<usize>>,
    pub message: String,
}

/// What [`collect`] found.
#[derive(Debug)]
pub(crate) struct Collected<T> {
    /// The value deserialised from what remained; `None` when nothing could
    /// be (an error without a position, or the root itself incomplete).
    pub value: Option<T>,
    /// Every error, in the order found.
    pub errors: Vec<TomlError>,
    /// What was removed, in order.
    pub removals: Vec<Removal>,
}

/// How the messages name a caller's untagged enums: the enum's name and
/// the forms it accepts (`"delete", "disconnect" or a table { ... }`).
pub(crate) type UntaggedForms<'a> = &'a [(&'a str, &'a str)];

/// Deserialises `T` from `root` (a parsed document, with its spans),
/// collecting every error as described in the module documentation.
pub(crate) fn collect<T: DeserializeOwned>(
    mut root: Table,
    untagged: UntaggedForms<'_>,
) -> Collected<T> {
    let mut errors = Vec::new();
    let mut removals = Vec::new();
    // Keys removed so far: the table that held them (by its span, which it
    // keeps while keys come and go; by its path when it has no span) and the key.
    let mut removed_keys: Vec<(Option<Range<usize>>, Vec<Seg>, String)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match toml_edit::de::from_document::<T>(DocumentMut::from(root.clone())) {
            Ok(value) => {
                return Collected {
                    value: Some(value),
                    errors,
                    removals,
                }
            }
            Err(e) => e,
        };
        let message = error.message().to_owned();
        let Some(span) = error.span() else {
            // Nothing to remove: the same error would come back.
            errors.push(TomlError {
                span: None,
                message: plain(&message, None, untagged),
            });
            break;
        };
        let parsed = Message::parse(&message);
        let mut path = match &parsed {
            // The span is the table's (or element's) lacking the field.
            Message::MissingField(_) => table_at(&root, &span),
            _ => None,
        }
        .unwrap_or_else(|| locate(&root, &span));
        let mut at = span.clone();
        let cause = match parsed {
            Message::MissingField(field) => {
                let table_span = node_at(&root, &path).and_then(|n| n.span());
                let ours = removed_keys.iter().any(|(t, p, k)| {
                    *k == field
                        && match (t, &table_span) {
                            (Some(t), Some(s)) => t == s,
                            _ => *p == path,
                        }
                });
                if !ours {
                    errors.push(TomlError {
                        span: Some(at),
                        message: plain(&message, None, untagged),
                    });
                }
                Cause::Incomplete
            }
            Message::UnknownField(field) => {
                // The span is the key's, except inside an internally tagged
                // enum (which sees a copy of its table): there, the table's.
                if let Some(Node::Table(_) | Node::Inline(_)) = node_at(&root, &path) {
                    let child = path_with(&path, Seg::Key(field.clone()));
                    if let Some(key) = key_span(&root, &child) {
                        at = key;
                        path = child;
                    }
                }
                errors.push(TomlError {
                    span: Some(at),
                    message: plain(&message, None, untagged),
                });
                Cause::UnknownKey
            }
            Message::Other => {
                // An error about a whole table (an internally tagged enum
                // reads a copy of it) is moved to the item inside it that
                // causes it, when there is one.
                if let Some(Node::Table(_) | Node::Inline(_)) = node_at(&root, &path) {
                    if let Some(inner) = culprit::<T>(&root, &path, &message, &span) {
                        at = node_at(&root, &inner).and_then(|n| n.span()).unwrap_or(at);
                        path = inner;
                    }
                }
                let found = match node_at(&root, &path) {
                    Some(Node::Leaf(v)) => Some(found_value(v)),
                    _ => None,
                };
                errors.push(TomlError {
                    span: Some(at),
                    message: plain(&message, found.as_deref(), untagged),
                });
                Cause::Unreadable
            }
        };
        if path.is_empty() {
            // The document itself cannot be read further.
            break;
        }
        let entry = if path.len() >= 2 {
            node_at(&root, &path[..2]).map(|n| n.to_item())
        } else {
            None
        };
        if let Some((Seg::Key(k), parent)) = path.split_last() {
            let table = node_at(&root, parent).and_then(|n| n.span());
            removed_keys.push((table, parent.to_vec(), k.clone()));
        }
        if !remove(&mut root, &path) {
            break;
        }
        removals.push(Removal { path, cause, entry });
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if errors.len() >= MAX_ERRORS {
        errors.push(TomlError {
            span: None,
            message: format!("more errors may follow: reading stops after {MAX_ERRORS}"),
        });
    }
    Collected {
        value: None,
        errors,
        removals,
    }
}

/// The kinds of serde message the loop treats specially.
enum Message {
    MissingField(String),
    UnknownField(String),
    Other,
}

impl Message {
    fn parse(message: &str) -> Message {
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            return Message::MissingField(field.to_owned());
        }
        if let Some((field, _)) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            return Message::UnknownField(field.to_owned());
        }
        Message::Other
    }
}

// ---------------------------------------------------------------- the tree

/// A node of the document.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
    Array(&'a Array),
    Tables(&'a ArrayOfTables),
    Leaf(&'a Value),
}

impl<'a> Node<'a> {
    fn of_item(item: &'a Item) -> Option<Node<'a>> {
        match item {
            Item::None => None,
            Item::Table(t) => Some(Node::Table(t)),
            Item::ArrayOfTables(a) => Some(Node::Tables(a)),
            Item::Value(v) => Some(Node::of_value(v)),
        }
    }

    fn of_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            v => Node::Leaf(v),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Inline(t) => t.span(),
            Node::Array(a) => a.span(),
            Node::Tables(a) => a.span(),
            Node::Leaf(v) => v.span(),
        }
    }

    /// What it holds: each step, the span of its key (for table entries)
    /// and the node.
    fn children(self) -> Vec<(Seg, Option<Range<usize>>, Node<'a>)> {
        match self {
            Node::Table(t) => t
                .iter()
                .filter_map(|(k, item)| {
                    let node = Node::of_item(item)?;
                    Some((
                        Seg::Key(k.to_owned()),
                        t.key(k).and_then(|k| k.span()),
                        node,
                    ))
                })
                .collect(),
            Node::Inline(t) => t
                .iter()
                .map(|(k, v)| {
                    (
                        Seg::Key(k.to_owned()),
                        t.key(k).and_then(|k| k.span()),
                        Node::of_value(v),
                    )
                })
                .collect(),
            Node::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), None, Node::of_value(v)))
                .collect(),
            Node::Tables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| (Seg::Index(i), None, Node::Table(t)))
                .collect(),
            Node::Leaf(_) => Vec::new(),
        }
    }

    fn child(self, seg: &Seg) -> Option<Node<'a>> {
        match (self, seg) {
            (Node::Table(t), Seg::Key(k)) => t.get(k).and_then(Node::of_item),
            (Node::Inline(t), Seg::Key(k)) => t.get(k).map(Node::of_value),
            (Node::Array(a), Seg::Index(i)) => a.get(*i).map(Node::of_value),
            (Node::Tables(a), Seg::Index(i)) => a.get(*i).map(Node::Table),
            _ => None,
        }
    }

    fn to_item(self) -> Item {
        match self {
            Node::Table(t) => Item::Table(t.clone()),
            Node::Inline(t) => Item::Value(Value::InlineTable(t.clone())),
            Node::Array(a) => Item::Value(Value::Array(a.clone())),
            Node::Tables(a) => Item::ArrayOfTables(a.clone()),
            Node::Leaf(v) => Item::Value(v.clone()),
        }
    }
}

fn path_with(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

fn node_at<'a>(root: &'a Table, path: &[Seg]) -> Option<Node<'a>> {
    path.iter()
        .try_fold(Node::Table(root), |node, seg| node.child(seg))
}

/// The span of the key at the end of `path`.
fn key_span(root: &Table, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(k), parent) = path.split_last()? else {
        return None;
    };
    match node_at(root, parent)? {
        Node::Table(t) => t.key(k)?.span(),
        Node::Inline(t) => t.key(k)?.span(),
        _ => None,
    }
}

fn within(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Whether the text of an entry (its key through its value) or of anything
/// inside it holds `span`.
fn covers(key: Option<&Range<usize>>, node: Node<'_>, span: &Range<usize>) -> bool {
    let own = match (key, node.span()) {
        (Some(k), Some(v)) => Some(k.start.min(v.start)..k.end.max(v.end)),
        (k, v) => k.cloned().or(v),
    };
    own.is_some_and(|own| within(&own, span))
        || node
            .children()
            .iter()
            .any(|(_, k, n)| covers(k.as_ref(), *n, span))
}

/// The path of the innermost entry or element whose text holds `span`
/// (empty when none does).
fn locate(root: &Table, span: &Range<usize>) -> Vec<Seg> {
    let mut path = Vec::new();
    let mut node = Node::Table(root);
    'down: loop {
        for (seg, key, child) in node.children() {
            if covers(key.as_ref(), child, span) {
                path.push(seg);
                node = child;
                continue 'down;
            }
        }
        return path;
    }
}

/// The path of the innermost table (or inline table) whose span is `span`:
/// empty for the document itself.
fn table_at(root: &Table, span: &Range<usize>) -> Option<Vec<Seg>> {
    fn inside(node: Node<'_>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
        for (seg, _, child) in node.children() {
            path.push(seg);
            if inside(child, span, path) {
                return true;
            }
            path.pop();
        }
        matches!(node, Node::Table(_) | Node::Inline(_)) && node.span().as_ref() == Some(span)
    }
    let mut path = Vec::new();
    inside(Node::Table(root), span, &mut path).then_some(path)
}

/// Takes the item at `path` out of the document.
fn remove(root: &mut Table, path: &[Seg]) -> bool {
    fn in_table(t: &mut Table, path: &[Seg]) -> bool {
        match path {
            [Seg::Key(k)] => t.remove(k).is_some(),
            [Seg::Key(k), rest @ ..] => t.get_mut(k).is_some_and(|i| in_item(i, rest)),
            _ => false,
        }
    }
    fn in_item(item: &mut Item, path: &[Seg]) -> bool {
        match item {
            Item::Table(t) => in_table(t, path),
            Item::Value(v) => in_value(v, path),
            Item::ArrayOfTables(a) => match path {
                [Seg::Index(i)] if *i < a.len() => {
                    a.remove(*i);
                    true
                }
                [Seg::Index(i), rest @ ..] => a.get_mut(*i).is_some_and(|t| in_table(t, rest)),
                _ => false,
            },
            Item::None => false,
        }
    }
    fn in_value(v: &mut Value, path: &[Seg]) -> bool {
        match (v, path) {
            (Value::InlineTable(t), [Seg::Key(k)]) => t.remove(k).is_some(),
            (Value::InlineTable(t), [Seg::Key(k), rest @ ..]) => {
                t.get_mut(k).is_some_and(|v| in_value(v, rest))
            }
            (Value::Array(a), [Seg::Index(i)]) if *i < a.len() => {
                a.remove(*i);
                true
            }
            (Value::Array(a), [Seg::Index(i), rest @ ..]) => {
                a.get_mut(*i).is_some_and(|v| in_value(v, rest))
            }
            _ => false,
        }
    }
    in_table(root, path)
}

/// Inside the table at `path`, the innermost item an error about the whole
/// table (`message` at `span`) is really about: the one whose removal makes
/// that error go (without making its own key missing). Deserialisation
/// stops at its first error, so removing anything else leaves the same
/// first error.
fn culprit<T: DeserializeOwned>(
    root: &Table,
    path: &[Seg],
    message: &str,
    span: &Range<usize>,
) -> Option<Vec<Seg>> {
    let node = node_at(root, path)?;
    for (seg, _, child) in node.children() {
        let needed = seg.key().map(|k| format!("missing field `{k}`"));
        let inside = path_with(path, seg);
        let mut without = root.clone();
        if !remove(&mut without, &inside) {
            continue;
        }
        // Removing what is needed first (an enum's tag) also changes the
        // error: to its key missing.
        let same = match toml_edit::de::from_document::<T>(DocumentMut::from(without)) {
            Ok(_) => false,
            Err(e) => {
                (e.message() == message && e.span().as_ref() == Some(span))
                    || needed.as_deref() == Some(e.message())
            }
        };
        if !same {
            return match child {
                Node::Leaf(_) => Some(inside),
                _ => culprit::<T>(root, &inside, message, span).or(Some(inside)),
            };
        }
    }
    None
}

/// A TOML value in words: `the string "500"`, `the whole number 5`.
fn found_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {:?}", s.value()),
        Value::Integer(i) => format!("the whole number {}", i.value()),
        Value::Float(f) => format!("the number {}", f.value()),
        Value::Boolean(b) => b.value().to_string(),
        Value::Datetime(d) => format!("the date-time {}", d.value()),
        Value::Array(_) => "a list".into(),
        Value::InlineTable(_) => "a table".into(),
    }
}

// ---------------------------------------------------------------- messages

/// serde's message in plain words. `found`, the value the message is
/// about in words (when it is a single value), is said instead of what
/// serde saw (a date-time is a table to serde) and completes messages that
/// do not say it.
pub(crate) fn plain(message: &str, found: Option<&str>, untagged: UntaggedForms<'_>) -> String {
    for (prefix, value) in [("invalid type: ", false), ("invalid value: ", true)] {
        if let Some((unexpected, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            return format!(
                "expected {}, found {}",
                expected_words(expected, value),
                found.map_or_else(|| unexpected_words(unexpected), str::to_owned)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            return format!("unknown key `{field}`; {}", alternatives(expected, false));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((variant, expected)) = rest.split_once('`') {
            return format!(
                "unknown value {variant:?}; {}",
                alternatives(expected, true)
            );
        }
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("missing key `{field}`");
    }
    if let Some(name) = message.strip_prefix("data did not match any variant of untagged enum ") {
        let forms = untagged
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("another form of value", |(_, f)| f);
        return match found {
            Some(found) => format!("expected {forms}, found {found}"),
            None => format!("expected {forms}"),
        };
    }
    message.to_owned()
}

/// serde's `expected one of `a`, `b`` tail: `expected one of: a, b`
/// (values quoted as TOML strings when `values`).
fn alternatives(tail: &str, values: bool) -> String {
    let tail = tail.trim_start_matches(',').trim();
    if tail.starts_with("there are no") {
        return if values {
            "no value is accepted here".into()
        } else {
            "no key is accepted here".into()
        };
    }
    // serde writes `a`, `a` or `b`, or one of `a`, `b`, `c`.
    let names: Vec<String> = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|n| {
            if values {
                format!("{n:?}")
            } else {
                n.to_owned()
            }
        })
        .collect();
    format!("expected one of: {}", names.join(", "))
}

/// What serde expected, in words; `value` for `invalid value` messages,
/// where an unsigned integer type means its sign was wrong.
fn expected_words(expected: &str, value: bool) -> String {
    let unsigned = matches!(expected, "u8" | "u16" | "u32" | "u64" | "u128" | "usize");
    let words = match expected {
        _ if unsigned && value => "a whole number of 0 or more",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" | "an integer" | "integer" => "a whole number",
        "f32" | "f64" | "a float" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "path string" | "a string or bytes" => "a string",
        "a character" | "char" => "a single character",
        "a sequence" => "a list",
        "a map" => "a table",
        e if e.starts_with("struct ")
            || e.starts_with("internally tagged enum ")
            || e.starts_with("a map ") =>
        {
            "a table"
        }
        e if e.starts_with("a sequence ") => "a list",
        e => e,
    };
    words.to_owned()
}

/// What serde found (its `Unexpected`), in words.
fn unexpected_words(unexpected: &str) -> String {
    let ticked = |prefix: &str| {
        unexpected
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('`'))
            .and_then(|r| r.strip_suffix('`'))
            .map(str::to_owned)
    };
    if let Some(s) = unexpected.strip_prefix("string ") {
        return format!("the string {s}");
    }
    if let Some(i) = ticked("integer ") {
        return format!("the whole number {i}");
    }
    if let Some(f) = ticked("floating point ") {
        return format!("the number {f}");
    }
    if let Some(b) = ticked("boolean ") {
        return b;
    }
    if let Some(c) = ticked("character ") {
        return format!("the character {c:?}");
    }
    match unexpected {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        "unit value" => "nothing".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        count: Option<usize>,
        #[serde(default)]
        items: Vec<Entry>,
        #[serde(default)]
        tagged: BTreeMap<String, Spanned<Tagged>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: Spanned<String>,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        list: Vec<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    enum Tagged {
        One(Inner),
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        path: String,
        #[serde(default)]
        size: u64,
    }

    /// `(line:column, message)` of each error, and the value.
    fn run(text: &str) -> (Vec<String>, Option<Doc>) {
        let doc = toml_edit::ImDocument::parse(text).expect("TOML");
        let got: Collected<Doc> = collect(doc.into_table(), &[]);
        let errors = got
            .errors
            .iter()
            .map(|e| {
                let at = e.span.clone().map_or("?".into(), |s| {
                    let before = &text[..s.start];
                    let l = before.matches('\n').count() + 1;
                    let c = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("{l}:{c}")
                });
                format!("{at} {}", e.message)
            })
            .collect();
        (errors, got.value)
    }

    #[test]
    fn every_error_is_reported_and_the_rest_is_read() {
        let text = r#"count = "5"

[[items]]
name = "a"
of = 1
on = "yes"

[[items]]
name = "b"
list = ["x", 2]

[[items]]
name = "c"
"#;
        let (errors, value) = run(text);
        assert_eq!(
            errors,
            [
                r#"1:9 expected a whole number, found the string "5""#,
                "5:1 unknown key `of`; expected one of: name, on, list",
                r#"6:6 expected true or false, found the string "yes""#,
                "10:14 expected a string, found the whole number 2",
            ]
        );
        let value = value.expect("what remained");
        assert_eq!(value.count, None);
        let names: Vec<&str> = value
            .items
            .iter()
            .map(|i| i.name.get_ref().as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        // Spans survive the round trips.
        assert_eq!(&text[value.items[2].name.span()], "\"c\"");
        assert_eq!(value.items[1].list.len(), 1);
        // The unreadable value is left out: its default remains.
        assert!(!value.items[0].on);
    }

    #[test]
    fn a_missing_key_the_loop_removed_is_not_reported_and_its_table_goes() {
        let text = "[[items]]\nname = 5\n\n[[items]]\non = true\n\n[[items]]\nname = \"c\"\n";
        let doc = toml_edit::ImDocument::parse(text).expect("TOML");
        let got: Collected<Doc> = collect(doc.into_table(), &[]);
        let messages: Vec<&str> = got.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "expected a string, found the whole number 5",
                "missing key `name`"
            ]
        );
        let value = got.value.expect("what remained");
        assert_eq!(value.items.len(), 1);
        assert_eq!(value.items[0].name.get_ref(), "c");
        let causes: Vec<Cause> = got.removals.iter().map(|r| r.cause).collect();
        assert_eq!(
            causes,
            [Cause::Unreadable, Cause::Incomplete, Cause::Incomplete]
        );
    }

    #[test]
    fn errors_inside_an_internally_tagged_enum_point_at_their_key() {
        let text = r#"[tagged.a]
type = "one"
path = "p"
sise = 3

[tagged.b]
type = "two"
path = "q"

[tagged.c]
type = "one"
path = "big"
size = "big"
"#;
        let (errors, value) = run(text);
        assert_eq!(
            errors,
            [
                "4:1 unknown key `sise`; expected one of: path, size",
                r#"7:8 unknown value "two"; expected one of: "one""#,
                r#"13:8 expected a whole number, found the string "big""#,
            ]
        );
        let value = value.expect("what remained");
        assert_eq!(value.tagged.keys().collect::<Vec<_>>(), ["a", "c"]);
        let Tagged::One(c) = value.tagged["c"].get_ref();
        assert_eq!((c.path.as_str(), c.size), ("big", 0));
    }

    #[test]
    fn a_key_missing_from_the_document_itself_is_reported_once_after_the_rest() {
        #[derive(Debug, Deserialize)]
        struct Needs {
            required: String,
            #[serde(default)]
            other: Option<Doc>,
        }
        let doc = toml_edit::ImDocument::parse("[other]\ncount = true\n").expect("TOML");
        let got: Collected<Needs> = collect(doc.into_table(), &[]);
        assert!(got.value.is_none());
        let messages: Vec<&str> = got.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "expected a whole number, found true",
                "missing key `required`"
            ]
        );
        // Had the document deserialised, both fields would have been read.
        let doc = toml_edit::ImDocument::parse("required = \"x\"\n[other]\n").expect("TOML");
        let got: Collected<Needs> = collect(doc.into_table(), &[]);
        let value = got.value.expect("a value");
        assert_eq!(value.required, "x");
        assert!(value
            .other
            .is_some_and(|o| o.items.is_empty() && o.tagged.is_empty()));
    }

    #[test]
    fn reporting_stops_after_max_errors() {
        let text: String = (0..MAX_ERRORS + 50)
            .map(|i| format!("key{i} = {i}\n"))
            .collect();
        let doc = toml_edit::ImDocument::parse(text.as_str()).expect("TOML");
        let got: Collected<Doc> = collect(doc.into_table(), &[]);
        assert!(got.value.is_none());
        assert_eq!(got.errors.len(), MAX_ERRORS + 1);
        assert_eq!(
            got.errors[MAX_ERRORS].message,
            format!("more errors may follow: reading stops after {MAX_ERRORS}")
        );
    }

    #[test]
    fn messages_in_plain_words() {
        let cases = [
            (
                r#"invalid type: string "500", expected usize"#,
                r#"expected a whole number, found the string "500""#,
            ),
            (
                "invalid type: integer `1`, expected a boolean",
                "expected true or false, found the whole number 1",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected a string, found true",
            ),
            (
                "invalid type: string \"a\", expected a sequence",
                "expected a list, found the string \"a\"",
            ),
            (
                "invalid type: sequence, expected struct RawRule",
                "expected a table, found a list",
            ),
            (
                "invalid type: integer `3`, expected a map",
                "expected a table, found the whole number 3",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "expected a whole number of 0 or more, found the whole number -1",
            ),
            (
                "unknown field `projekt`, expected one of `name`, `direction`",
                "unknown key `projekt`; expected one of: name, direction",
            ),
            (
                "unknown field `x`, expected `path`",
                "unknown key `x`; expected one of: path",
            ),
            (
                "unknown field `x`, there are no fields",
                "unknown key `x`; no key is accepted here",
            ),
            (
                "unknown variant `ldap`, expected `csv`",
                r#"unknown value "ldap"; expected one of: "csv""#,
            ),
            (
                "unknown variant `b`, expected `a` or `c`",
                r#"unknown value "b"; expected one of: "a", "c""#,
            ),
            (
                "unknown field `b`, expected one of `a`, `c`, `d`",
                "unknown key `b`; expected one of: a, c, d",
            ),
            ("missing field `path`", "missing key `path`"),
            ("invalid delimiter \";;\"", "invalid delimiter \";;\""),
        ];
        for (serde, words) in cases {
            assert_eq!(plain(serde, None, &[]), words, "{serde}");
        }
        assert_eq!(
            plain(
                "invalid type: map, expected a string",
                Some("the date-time 1979-05-27T07:32:00Z"),
                &[]
            ),
            "expected a string, found the date-time 1979-05-27T07:32:00Z"
        );
        assert_eq!(
            plain(
                "data did not match any variant of untagged enum Spec",
                Some("the whole number 5"),
                &[("Spec", "\"a\" or a table { b = \"...\" }")]
            ),
            "expected \"a\" or a table { b = \"...\" }, found the whole number 5"
        );
    }
}
