//! The delta watermark, as the engine stores it with the staged changes:
//! `sql1:column:<int|ts|text>:<value>` (the highest watermark-column value
//! imported; `sql1:column:none` when the table had no rows) or
//! `sql1:log:<sequence>` (the last change-log sequence imported;
//! `sql1:log:none`).

use rules::Value;

/// A decoded watermark.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mark {
    /// The watermark-column strategy: the highest value imported.
    Column(Option<Value>),
    /// The change-log strategy: the last sequence imported.
    Log(Option<i64>),
}

const PREFIX: &str = "sql1:";

impl Mark {
    /// The stored form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Mark::Column(None) => format!("{PREFIX}column:none"),
            Mark::Column(Some(Value::Int(i))) => format!("{PREFIX}column:int:{i}"),
            Mark::Column(Some(Value::DateTime(us))) => format!("{PREFIX}column:ts:{us}"),
            Mark::Column(Some(v)) => format!("{PREFIX}column:text:{v}"),
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
            let (kind, value) = rest.split_once(':').ok_or_else(bad)?;
            let value = match kind {
                "int" => Value::Int(value.parse().map_err(|_| bad())?),
                "ts" => Value::DateTime(value.parse().map_err(|_| bad())?),
                "text" => Value::str(value),
                _ => return Err(bad()),
            };
            return Ok(Mark::Column(Some(value)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_round_trips() {
        for mark in [
            Mark::Column(None),
            Mark::Column(Some(Value::Int(-3))),
            Mark::Column(Some(Value::DateTime(1_700_000_000_123_456))),
            Mark::Column(Some(Value::str("2026-01-01 10:00:00:x"))),
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
