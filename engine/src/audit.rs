//! The audit log: every exported change — when, which run, which connector
//! and object, the operation, each attribute old → new, and the result —
//! appended as one JSON line to a file beside the store, written after the
//! connected system answered and before the store records the answer, so
//! a change the system applied is in the log even if the process dies
//! next. `mvsync audit` reads it back one line at a time; `mvsync revert`
//! stages the inverse of a run's changes from it.
//!
//! Invariant: no secret reaches it. The engine never holds a connector's
//! secrets (passwords it makes are the connectors'), and the values of an
//! attribute whose name says it holds one (`password`, `pwd`, `secret`)
//! are written as `<redacted>`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rules::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What a value of a secret-looking attribute is written as.
pub const REDACTED: &str = "<redacted>";

/// One exported change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the system answered (RFC 3339, UTC).
    pub time: String,
    /// The run that exported it.
    pub run: u64,
    /// The connector.
    pub connector: String,
    /// The connector-space object's id (`cs:N`).
    pub object: u64,
    /// Its object type.
    pub object_type: String,
    /// Its anchor after the change (an add learns it here).
    pub anchor: Option<String>,
    /// Its DN before the change.
    pub dn: Option<String>,
    /// `add`, `update`, `rename` or `delete`.
    pub operation: String,
    /// The new DN of a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_dn: Option<String>,
    /// Each attribute the change wrote, old → new (a delete lists what the
    /// object held).
    pub changes: Vec<AuditChange>,
    /// `applied` or `failed`.
    pub result: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One attribute of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditChange {
    /// The attribute.
    pub attribute: String,
    /// Its value before (null: none).
    pub old: Json,
    /// Its value after (null: none).
    pub new: Json,
}

/// Whether an attribute's name says it holds a secret.
pub fn is_secret(attribute: &str) -> bool {
    let name = attribute.to_ascii_lowercase();
    ["password", "pwd", "secret"]
        .iter()
        .any(|s| name.contains(s))
}

impl AuditChange {
    /// A change of `attribute` from `old` to `new`, redacted when the
    /// attribute holds a secret.
    pub fn new(attribute: &str, old: &Value, new: &Value) -> AuditChange {
        let shown = |v: &Value| {
            if is_secret(attribute) && !v.is_null() {
                Json::String(REDACTED.into())
            } else {
                to_json(v)
            }
        };
        AuditChange {
            attribute: attribute.to_owned(),
            old: shown(old),
            new: shown(new),
        }
    }
}

/// A value as audit JSON: strings, integers, booleans and lists as
/// themselves; bytes and date-times tagged so that they read back as
/// they were.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Str(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Bool(b) => Json::Bool(*b),
        Value::Bytes(_) => serde_json::json!({ "base64": v.to_string() }),
        Value::DateTime(us) => serde_json::json!({ "datetime_us": us }),
        Value::Ref(id) => serde_json::json!({ "ref": id }),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
    }
}

/// The value audit JSON holds (the inverse of [`to_json`]).
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Str(n.to_string()), Value::Int),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::list(items.iter().map(from_json)),
        Json::Object(o) => {
            if let Some(b) = o.get("base64").and_then(Json::as_str) {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_or_else(|_| Value::Str(b.to_owned()), Value::Bytes)
            } else if let Some(us) = o.get("datetime_us").and_then(Json::as_i64) {
                Value::DateTime(us)
            } else if let Some(id) = o.get("ref").and_then(Json::as_u64) {
                Value::Ref(id)
            } else {
                Value::Str(j.to_string())
            }
        }
    }
}

/// The audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

/// Why the audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl AuditLog {
    /// The log at `path`.
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog { path: path.into() }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> AuditError {
        AuditError {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// Appends entries, one line each, in one write.
    pub fn append(&self, entries: &[AuditEntry]) -> Result<(), AuditError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for e in entries {
            text.push_str(&serde_json::to_string(e).map_err(|e| self.error(e))?);
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        // A line cut by a crash stays a line of its own (skipped on read),
        // never the start of this one.
        if !ends_with_newline(&mut file).map_err(|e| self.error(e))? {
            text.insert(0, '\n');
        }
        file.write_all(text.as_bytes()).map_err(|e| self.error(e))
    }

    /// Makes what was appended durable.
    pub fn sync(&self) -> Result<(), AuditError> {
        match std::fs::File::open(&self.path) {
            Ok(f) => f.sync_all().map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Gives every entry to `each`, oldest first, one line at a time (a
    /// missing file has none); `each` returns `false` to stop. A line that
    /// is not an entry (a write cut by a crash) is skipped with a warning.
    pub fn each(&self, each: &mut dyn FnMut(AuditEntry) -> bool) -> Result<(), AuditError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.error(e)),
        };
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| self.error(e))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<AuditEntry>(&line) {
                Ok(entry) => {
                    if !each(entry) {
                        return Ok(());
                    }
                }
                Err(e) => tracing::warn!(
                    "{}:{}: not an audit entry, skipped: {e}",
                    self.path.display(),
                    n + 1
                ),
            }
        }
        Ok(())
    }
}

/// Whether the file is empty or ends with a line end.
fn ends_with_newline(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_secrets_are_redacted() {
        for v in [
            Value::Null,
            Value::Str("Ada".into()),
            Value::Int(512),
            Value::Bool(true),
            Value::Bytes(vec![0, 255, 7]),
            Value::DateTime(1_700_000_000_000_000),
            Value::list([Value::Str("a".into()), Value::Str("b".into())]),
        ] {
            assert_eq!(from_json(&to_json(&v)), v, "{v:?}");
        }
        let c = AuditChange::new("unicodePwd", &Value::Null, &Value::Str("hunter2".into()));
        assert_eq!(c.new, Json::String(REDACTED.into()));
        assert!(is_secret("userPassword") && is_secret("clientSecret") && !is_secret("mail"));
    }

    #[test]
    fn entries_append_and_read_back_skipping_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        let entry = |run| AuditEntry {
            time: "2026-12-06T10:00:00Z".into(),
            run,
            connector: "app".into(),
            object: 7,
            object_type: "account".into(),
            anchor: Some("e1".into()),
            dn: None,
            operation: "update".into(),
            new_dn: None,
            changes: vec![AuditChange::new(
                "city",
                &Value::Str("Oslo".into()),
                &Value::Str("Bergen".into()),
            )],
            result: "applied".into(),
            error: None,
        };
        log.append(&[entry(1), entry(2)]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"time\":\"2026")
            .unwrap();
        log.append(&[entry(3)]).unwrap();
        let mut runs = Vec::new();
        log.each(&mut |e| {
            runs.push(e.run);
            true
        })
        .unwrap();
        assert_eq!(
            runs,
            vec![1, 2, 3],
            "the torn line is skipped, the next entry kept"
        );
    }
}
