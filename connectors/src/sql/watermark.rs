//! The delta watermark, as the engine stores it with the staged changes:
//! `sql1:column:<int|ts|text>:<anchor in hex>:<value>` (the highest
//! watermark-column value imported, and the anchor of a row that held it,
//! so a delete of that row is told from a table that moved backwards;
//! `sql1:column:none` when the table had no rows) or `sql1:log:<sequence>`
//! (the last change-log sequence imported; `sql1:log:none`).

use rules::Value;

/// A decoded watermark.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mark {
    /// The watermark-column strategy: the highest value imported, and the
    /// anchor of a row that held it.
    Column(Option<(Value, String)>),
    /// The change-log strategy: the last sequence imported.
    Log(Option<i64>),
}

const PREFIX: &str = "sql1:";

impl Mark {
    /// The stored form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Mark::Column(None) => format!("{PREFIX}column:none"),
            Mark::Column(Some((value, anchor))) => {
                let (kind, text) = match value {
                    Value::Int(i) => ("int", i.to_string()),
                    Value::DateTime(us) => ("ts", us.to_string()),
                    v => ("text", v.to_string()),
                };
                format!("{PREFIX}column:{kind}:{}:{text}", hex(anchor))
            }
            Mark::Log(None) => format!("{PREFIX}log:none"),
            Mark::Log(Some(seq)) => format!("{PREFIX}log:{seq}"),
        }
    }

    /// Reads a stored watermark; `Err` says what is wrong with it.
    pub(crate) fn decode(text: &str) -> Result<Mark, String> {
        let bad = || format!("{text:?} is not a watermark of the SQL connector");
        let rest = text.strip_prefix(PREFIX).ok_or_else(bad)?;
        if let Some(rest) = rest.strip_prefix("column:") {
            if rest == "none" {
                return Ok(Mark::Column(None));
            }
            let mut parts = rest.splitn(3, ':');
            let (Some(kind), Some(anchor), Some(value)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let anchor = unhex(anchor).ok_or_else(bad)?;
            let value = match kind {
                "int" => Value::Int(value.parse().map_err(|_| bad())?),
                "ts" => Value::DateTime(value.parse().map_err(|_| bad())?),
                "text" => Value::str(value),
                _ => return Err(bad()),
            };
            return Ok(Mark::Column(Some((value, anchor))));
        }
        if let Some(rest) = rest.strip_prefix("log:") {
            if rest == "none" {
                return Ok(Mark::Log(None));
            }
            return Ok(Mark::Log(Some(rest.parse().map_err(|_| bad())?)));
        }
        Err(bad())
    }
}

/// Whether watermark value `a` is below `b`: numbers by value (text that
/// reads as a number too: a NUMERIC column), times by time, text as text.
/// Values of different kinds (the column changed type) count as below, so
/// the import asks for a full one.
pub(crate) fn below(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::DateTime(x), Value::DateTime(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x < y,
            _ => x < y,
        },
        _ => true,
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_compares_as_numbers() {
        assert!(below(&Value::str("9.5"), &Value::str("10.5")));
        assert!(!below(&Value::str("10.5"), &Value::str("9.5")));
        assert!(below(&Value::str("2026-01-01"), &Value::str("2026-01-02")));
        assert!(
            below(&Value::Int(5), &Value::str("6")),
            "another kind is below"
        );
    }

    #[test]
    fn every_mark_round_trips() {
        for mark in [
            Mark::Column(None),
            Mark::Column(Some((Value::Int(-3), "ACME|E1".to_owned()))),
            Mark::Column(Some((
                Value::DateTime(1_700_000_000_123_456),
                String::new(),
            ))),
            Mark::Column(Some((
                Value::str("2026-01-01 10:00:00:x"),
                "a:b:ü".to_owned(),
            ))),
            Mark::Log(None),
            Mark::Log(Some(42)),
        ] {
            assert_eq!(Mark::decode(&mark.encode()), Ok(mark.clone()), "{mark:?}");
        }
    }

    #[test]
    fn foreign_and_malformed_watermarks_are_refused() {
        for text in [
            "v1:10:abc",
            "sql1:column:int:x",
            "sql1:log:",
            "sql1:other:1",
            "sql1:column:float:1",
        ] {
            assert!(Mark::decode(text).is_err(), "{text}");
        }
    }
}
