//! A connected system for the end-to-end tests (cargo feature `testkit`,
//! never in a release build): a directory-like store of objects in a JSON
//! file whose anchors the system assigns (`g-1`, `g-2`, …), reached with a
//! password, and faults a test switches on by environment variable:
//!
//! - `MVSYNC_FAULT_DROP_AFTER=N`: the connection drops after N operations
//!   of each export batch (they are applied; the rest are not);
//! - `MVSYNC_FAULT_CRASH_AFTER_APPLY=1`: the process dies (abort) after the
//!   system applied a batch and before the engine hears back;
//! - `MVSYNC_FAULT_EXPIRED=1`: a delta import finds its watermark expired.
//!
//! It exists to prove the engine's side of the connector contract through
//! the binary (secrets never printed, partial batches, in-flight adds,
//! expired watermarks); the real connectors are tested against real servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use engine::{
    Applied, AttrOp, CheckReport, Connector, ConnectorError, ConnectorErrorKind, ConnectorInfo,
    ExportChange, ExportFailure, ExportOp, ExportReport, ExportResult, FailureKind, ImportEvent,
    ImportItem, ImportStream, ImportedObject, ObjectTypeSchema,
};
use futures::StreamExt;
use rules::Value;
use serde::{Deserialize, Serialize};

use crate::common::{Secret, SecretRef};

/// `type = "fault"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The JSON file holding the system's state.
    pub path: PathBuf,
    /// The type of every object.
    pub object_type: String,
    /// The attribute that identifies an object whose add's answer was lost.
    pub key: String,
    /// The password to reach the system.
    pub password: SecretRef,
}

/// The system's state on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The password the system accepts.
    password: String,
    /// Objects by anchor: attribute name → string value.
    objects: BTreeMap<String, BTreeMap<String, String>>,
    /// Anchors assigned so far.
    next: u64,
}

/// The connector.
pub struct FaultConnector {
    config: FaultConfig,
    path: PathBuf,
    password: Secret,
}

impl FaultConnector {
    /// Resolves the path and reads the password.
    pub fn new(config: FaultConfig, base_dir: &Path) -> Result<Self, ConnectorError> {
        let password = config
            .password
            .resolve(base_dir)
            .map_err(|e| ConnectorError::of(ConnectorErrorKind::Configuration, e.to_string()))?;
        Ok(FaultConnector {
            path: base_dir.join(&config.path),
            config,
            password,
        })
    }

    fn load(&self) -> Result<State, ConnectorError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            ConnectorError::unavailable(format!("cannot reach {}: {e}", self.path.display()))
        })?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| ConnectorError::new(format!("{}: {e}", self.path.display())))?;
        if state.password != self.password.expose() {
            return Err(ConnectorError::of(
                ConnectorErrorKind::Authentication,
                format!(
                    "{}: invalid credentials (the password from {} was refused)",
                    self.path.display(),
                    self.config.password
                ),
            ));
        }
        Ok(state)
    }

    fn save(&self, state: &State) -> Result<(), ConnectorError> {
        let text =
            serde_json::to_string_pretty(state).map_err(|e| ConnectorError::new(e.to_string()))?;
        std::fs::write(&self.path, text)
            .map_err(|e| ConnectorError::unavailable(format!("{}: {e}", self.path.display())))
    }

    fn apply(&self, state: &mut State, change: &ExportChange) -> Result<Applied, ExportFailure> {
        let text = |v: &Value| v.to_string();
        match &change.op {
            ExportOp::Add { attributes } => {
                let attrs: BTreeMap<String, String> = attributes
                    .iter()
                    .map(|(n, v)| (n.clone(), text(v)))
                    .collect();
                if let Some(key) = attrs.get(&self.config.key) {
                    let existing = state
                        .objects
                        .iter()
                        .find(|(_, o)| o.get(&self.config.key) == Some(key));
                    if let Some((anchor, _)) = existing {
                        let mut f = ExportFailure::new(
                            FailureKind::AlreadyExists,
                            format!("an object with {} {key:?} exists", self.config.key),
                        )
                        .with_code("FAULT-EXISTS");
                        f.existing_anchor = Some(anchor.clone());
                        return Err(f);
                    }
                }
                state.next += 1;
                let anchor = format!("g-{}", state.next);
                state.objects.insert(anchor.clone(), attrs);
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
            ExportOp::Update { changes, .. } => {
                let anchor = change.anchor.clone().unwrap_or_default();
                let Some(object) = state.objects.get_mut(&anchor) else {
                    return Err(ExportFailure::new(FailureKind::NotFound, "no such object")
                        .with_code("FAULT-NOT-FOUND"));
                };
                for (name, op) in changes {
                    match op {
                        AttrOp::Replace(v) => {
                            object.insert(name.clone(), text(v));
                        }
                        AttrOp::Clear => {
                            object.remove(name);
                        }
                        AttrOp::Add(_) | AttrOp::Remove(_) => {
                            return Err(ExportFailure::new(
                                FailureKind::Permanent,
                                "multi-valued attributes are not supported",
                            ))
                        }
                    }
                }
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
            ExportOp::Delete => {
                let anchor = change.anchor.clone().unwrap_or_default();
                match state.objects.remove(&anchor) {
                    Some(_) => Ok(Applied {
                        anchor: Some(anchor),
                    }),
                    None => Err(ExportFailure::new(FailureKind::NotFound, "no such object")),
                }
            }
        }
    }
}

fn knob(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[async_trait]
impl Connector for FaultConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            object_types: vec![ObjectTypeSchema {
                name: self.config.object_type.clone(),
                anchor_attribute: None,
                attributes: Vec::new(),
            }],
            delta_import: true,
            export: true,
            has_dn: false,
            rewrites_dn_references: false,
            export_batch_size: 100,
        }
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        let state = self.load()?;
        let mut items: Vec<Result<ImportItem, ConnectorError>> = state
            .objects
            .into_iter()
            .map(|(anchor, attrs)| {
                Ok(ImportItem::Event(ImportEvent::Object(ImportedObject {
                    anchor,
                    object_type: self.config.object_type.clone(),
                    dn: None,
                    attributes: attrs.into_iter().map(|(n, v)| (n, Value::Str(v))).collect(),
                })))
            })
            .collect();
        items.push(Ok(ImportItem::Event(ImportEvent::Watermark(format!(
            "n{}",
            state.next
        )))));
        Ok(futures::stream::iter(items).boxed())
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        let state = self.load()?;
        if knob("MVSYNC_FAULT_EXPIRED").is_some() {
            return Err(ConnectorError::watermark_expired(format!(
                "the delta token {watermark:?} has expired"
            )));
        }
        let mark = ImportEvent::Watermark(format!("n{}", state.next));
        Ok(futures::stream::iter([Ok(ImportItem::Event(mark))]).boxed())
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        let mut state = self.load()?;
        let drop_after = knob("MVSYNC_FAULT_DROP_AFTER").and_then(|v| v.parse::<usize>().ok());
        let mut results = Vec::with_capacity(batch.len());
        for (n, change) in batch.iter().enumerate() {
            if drop_after == Some(n) {
                self.save(&state)?;
                return Ok(ExportReport {
                    results,
                    interrupted: Some(ConnectorError::unavailable("connection reset by peer")),
                });
            }
            let outcome = self.apply(&mut state, change);
            results.push(ExportResult {
                id: change.id,
                outcome,
            });
        }
        self.save(&state)?;
        if knob("MVSYNC_FAULT_CRASH_AFTER_APPLY").is_some() {
            // The system has applied the batch; the engine never hears back.
            std::process::abort();
        }
        Ok(ExportReport::complete(results))
    }

    async fn find_added(&self, change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        let state = self.load()?;
        let ExportOp::Add { attributes } = &change.op else {
            return Ok(None);
        };
        let Some((_, key)) = attributes.iter().find(|(n, _)| *n == self.config.key) else {
            return Ok(None);
        };
        let key = key.to_string();
        Ok(state
            .objects
            .iter()
            .find(|(_, o)| o.get(&self.config.key) == Some(&key))
            .map(|(anchor, _)| anchor.clone()))
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let state = self.load()?;
        Ok(CheckReport {
            checks: vec![
                format!("reached {}", self.path.display()),
                "authenticated with the configured password".to_owned(),
                format!("{} object(s)", state.objects.len()),
            ],
        })
    }
}
