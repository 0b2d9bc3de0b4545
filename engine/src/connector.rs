//! The contract between the engine and a connected system.
//!
//! Connectors speak in their own terms (anchors, DNs, attribute names as
//! strings) and never see store ids: the engine translates references to the
//! connector's form before export and resolves them after import.
//!
//! Invariant: the engine never imports a connector crate; connectors depend on
//! the engine, never the other way round.

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use rules::{Value, ValueType};

/// What a connector can do and what its objects look like.
#[derive(Debug, Clone, Default)]
pub struct ConnectorInfo {
    /// The object types it holds.
    pub object_types: Vec<ObjectTypeSchema>,
    /// Whether `delta_import` is supported.
    pub delta_import: bool,
    /// Whether `export` is supported.
    pub export: bool,
    /// Whether objects have distinguished names (renames are exported as moves).
    pub has_dn: bool,
    /// Whether the system rewrites DN-valued attributes that name an object
    /// when that object is renamed or moved (Active Directory does, as does
    /// an LDAP server with a referential-integrity overlay). When it does,
    /// the engine exports no updates of the referring objects after a
    /// rename and expects the new DN in them at the next import; when it
    /// does not (CSV, SQL), the referrers' updates are staged with the rename.
    pub rewrites_dn_references: bool,
    /// How many changes one `export` call should receive at most.
    pub export_batch_size: usize,
}

impl ConnectorInfo {
    /// Whether the connected system assigns the anchor of objects of this
    /// type (AD objectGUID, Graph id): adds of those are recorded as in
    /// flight before they are sent.
    pub fn assigns_anchor(&self, object_type: &str) -> bool {
        self.object_type(object_type)
            .is_some_and(|t| t.anchor_attribute.is_none())
    }
}

impl ConnectorInfo {
    /// The schema of one object type, if the connector declares it.
    pub fn object_type(&self, name: &str) -> Option<&ObjectTypeSchema> {
        self.object_types.iter().find(|t| t.name == name)
    }
}

/// The schema of one object type.
#[derive(Debug, Clone, Default)]
pub struct ObjectTypeSchema {
    /// The type's name (`worker`, `user`, `group`).
    pub name: String,
    /// When the anchor is an ordinary attribute the engine can compute before
    /// export (a CSV key column, a SQL key), its name. `None` when the
    /// connected system assigns the anchor (AD objectGUID, Graph id).
    pub anchor_attribute: Option<String>,
    /// Declared attributes. An empty list means "not declared": any attribute
    /// is accepted as a string.
    pub attributes: Vec<AttributeSchema>,
}

impl ObjectTypeSchema {
    /// The declared attribute of that name, if any.
    pub fn attribute(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// One attribute of an object type.
#[derive(Debug, Clone)]
pub struct AttributeSchema {
    /// Its name in the connected system.
    pub name: String,
    /// Its type; values flowing out are coerced to it before diffing.
    pub value_type: ValueType,
    /// Whether it holds several values.
    pub multi_valued: bool,
    /// For a reference attribute, how the connected system names the
    /// referenced object.
    pub reference: Option<RefKind>,
}

/// How a connected system writes a reference to another of its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// By the referenced object's anchor (a CSV key column, a Graph id).
    Anchor,
    /// By the referenced object's distinguished name (LDAP).
    Dn,
}

/// One object as read from the connected system.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedObject {
    /// Its immutable identity in the connected system.
    pub anchor: String,
    /// Its object type.
    pub object_type: String,
    /// Its distinguished name, where the system has them.
    pub dn: Option<String>,
    /// Its attributes; references in the connector's own form (anchor or DN strings).
    pub attributes: Vec<(String, Value)>,
}

/// A change to one attribute, as a delta import reports it or an export applies it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AttrOp {
    /// Set the attribute to this value (all values, for a multi-valued attribute).
    Replace(Value),
    /// Add these values to a multi-valued attribute.
    Add(Vec<Value>),
    /// Remove these values from a multi-valued attribute.
    Remove(Vec<Value>),
    /// Remove every value.
    Clear,
}

/// What an import step yields, one item at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportEvent {
    /// The full current state of an object (add or update, the engine tells which).
    Object(ImportedObject),
    /// Changed attributes only, for connectors whose delta reports those (LDAP DirSync, Graph delta).
    Partial {
        /// The object's anchor.
        anchor: String,
        /// Its object type.
        object_type: String,
        /// Its DN after the change, when it has one.
        dn: Option<String>,
        /// The attribute changes.
        changes: Vec<(String, AttrOp)>,
    },
    /// The object is gone from the connected system.
    Delete {
        /// The object's anchor.
        anchor: String,
    },
    /// The position to resume a later delta import from. The engine stores it
    /// in the same commit as the changes that precede it.
    Watermark(String),
}

/// One malformed item: an error on that item, not the end of the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ItemError {
    /// Where: `file:line:column`, an anchor, a DN, a page.
    pub location: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A failure of the connected system or of its configuration: the step fails
/// and every pending change is kept for the next run. Its message must never
/// hold a secret (connectors keep secrets in `Secret`, whose `Display` is a
/// redaction).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// What failed, naming the system, file or server.
    pub message: String,
    /// What kind of failure, so the engine and the operator know what to do.
    pub kind: ConnectorErrorKind,
}

/// The kinds of [`ConnectorError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorErrorKind {
    /// The system is down, busy or the connection dropped: try again later.
    Unavailable,
    /// The credentials were refused.
    Authentication,
    /// The delta watermark is one the system no longer honours (an expired
    /// Graph delta token, an invalid DirSync cookie, a forgotten USN): only
    /// a full import can resume.
    WatermarkExpired,
    /// The connector's configuration is wrong for this system.
    Configuration,
    /// Anything else.
    Other,
}

impl ConnectorError {
    /// Builds an error from a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectorError::of(ConnectorErrorKind::Other, message)
    }

    /// Builds an error of a kind.
    pub fn of(kind: ConnectorErrorKind, message: impl Into<String>) -> Self {
        ConnectorError {
            message: message.into(),
            kind,
        }
    }

    /// The system is down, busy or the connection dropped.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ConnectorError::of(ConnectorErrorKind::Unavailable, message)
    }

    /// The delta watermark is no longer honoured; a full import is needed.
    pub fn watermark_expired(message: impl Into<String>) -> Self {
        ConnectorError::of(ConnectorErrorKind::WatermarkExpired, message)
    }
}

/// An item of an import stream.
#[derive(Debug)]
pub enum ImportItem {
    /// A well-formed event.
    Event(ImportEvent),
    /// One bad item; the stream goes on.
    Bad(ItemError),
}

/// An import as a stream: never the whole connected system in memory. A
/// `Err` item ends the step.
pub type ImportStream = BoxStream<'static, Result<ImportItem, ConnectorError>>;

/// One change the engine asks a connector to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportChange {
    /// Opaque engine id of the connector-space object; echoed in the result.
    pub id: u64,
    /// Its object type.
    pub object_type: String,
    /// Its anchor, when known (always, except for an add the system has not confirmed).
    pub anchor: Option<String>,
    /// Its current DN (before any rename in this change).
    pub dn: Option<String>,
    /// What to do.
    pub op: ExportOp,
}

/// The kind of an exported change. Reference values are already in the
/// connector's form (anchor or DN strings).
#[derive(Debug, Clone, PartialEq)]
pub enum ExportOp {
    /// Create the object with these attributes (at `dn`, where the system has DNs).
    Add {
        /// Every attribute of the new object.
        attributes: Vec<(String, Value)>,
    },
    /// Change attributes, and move the object if `new_dn` is set.
    Update {
        /// A rename or move, never a delete and add.
        new_dn: Option<String>,
        /// Attribute-level changes.
        changes: Vec<(String, AttrOp)>,
    },
    /// Delete the object.
    Delete,
}

/// The outcome of one exported change.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportResult {
    /// The [`ExportChange::id`] it answers.
    pub id: u64,
    /// Applied (with the object's anchor, which an add learns here) or failed.
    pub outcome: Result<Applied, ExportFailure>,
}

/// What came of one `export` call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportReport {
    /// One result per change whose outcome is known, in any order.
    pub results: Vec<ExportResult>,
    /// Set when the batch stopped part-way (a non-transactional system whose
    /// connection dropped after some operations): the changes without a
    /// result are of unknown outcome. The engine keeps them pending (an add
    /// of a system-assigned anchor stays in flight and is looked up before it
    /// is sent again) and fails the step after recording the results.
    pub interrupted: Option<ConnectorError>,
}

impl ExportReport {
    /// A report of a batch that ran to its end.
    pub fn complete(results: Vec<ExportResult>) -> ExportReport {
        ExportReport {
            results,
            interrupted: None,
        }
    }
}

/// Why one exported change failed: what the engine should do with it, and
/// the system's own code for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExportFailure {
    /// What to do about it.
    pub kind: FailureKind,
    /// The connected system's own code (`LDAP 68 entryAlreadyExists`,
    /// `Request_ResourceNotFound`, `SQLSTATE 23505`), when it gave one.
    pub code: Option<String>,
    /// What went wrong, in words.
    pub message: String,
    /// For [`FailureKind::AlreadyExists`], the existing object's anchor when
    /// the system told it.
    pub existing_anchor: Option<String>,
}

impl ExportFailure {
    /// A failure of a kind with a message and no system code.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> ExportFailure {
        ExportFailure {
            kind,
            code: None,
            message: message.into(),
            existing_anchor: None,
        }
    }

    /// Adds the system's own code.
    pub fn with_code(mut self, code: impl Into<String>) -> ExportFailure {
        self.code = Some(code.into());
        self
    }
}

/// The kinds of [`ExportFailure`], each handled its own way by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// Transient (busy, timeout, throttled): retried with backoff within the
    /// run, then kept pending for the next run.
    Retryable,
    /// An add of an object that already exists: the engine joins the
    /// connector-space object to it (adopts it) and lets the next import and
    /// sync bring it in step, instead of creating a second one.
    AlreadyExists,
    /// The object is not in the system: a delete is taken as done; any other
    /// change is an error until an import shows the object gone.
    NotFound,
    /// The system's policy refused the change (permissions, constraints,
    /// password rules).
    RejectedByPolicy,
    /// Anything else that will fail again as it stands.
    Permanent,
}

impl FailureKind {
    /// The error code the engine records for a failure of this kind.
    pub fn code(self) -> &'static str {
        match self {
            FailureKind::Retryable => "export-retryable",
            FailureKind::AlreadyExists => "export-already-exists",
            FailureKind::NotFound => "export-not-found",
            FailureKind::RejectedByPolicy => "export-rejected",
            FailureKind::Permanent => "export-error",
        }
    }
}

/// What a health check found: the system was reached, the credentials
/// accepted and the schema read, and nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// What was checked, one line each (`reached ldaps://dc1:636`,
    /// `bound as CN=svc`, `schema: 2 object types, 31 attributes`).
    pub checks: Vec<String>,
}

/// A successfully applied change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The object's anchor in the connected system after the change.
    pub anchor: Option<String>,
}

/// A connected system.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Schema and capabilities. Cheap and offline: it touches no connected system.
    fn info(&self) -> ConnectorInfo;

    /// Reads every object. Yields `ImportEvent::Object` items and, optionally,
    /// a final `Watermark` from which a later delta import resumes.
    async fn full_import(&self) -> Result<ImportStream, ConnectorError>;

    /// Reads the changes since `watermark` (`None`: since the beginning, as
    /// the connector defines it). Ends with a `Watermark` when there is one.
    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError>;

    /// Applies a batch of changes, returning one result per change whose
    /// outcome is known, in any order. A failure of one object is an `Err`
    /// outcome for that object; a batch cut short reports what it applied
    /// with [`ExportReport::interrupted`] set. `Err(ConnectorError)` means no
    /// change's outcome is known (the same as an interrupted, empty report).
    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError>;

    /// Looks for the object an add of unknown outcome may have created (the
    /// process died between sending the add and recording its answer, or
    /// the batch was interrupted), by a stable key of the change (its DN,
    /// or a unique attribute such as `userPrincipalName`). `Some(anchor)`
    /// when the object exists: the engine records the add as applied
    /// instead of sending it again. Connectors whose systems assign the
    /// anchor must implement it; the default finds nothing.
    async fn find_added(&self, _change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }

    /// Reaches the system, authenticates and reads the schema, changing
    /// nothing (`mvsync test-connection`).
    async fn check(&self) -> Result<CheckReport, ConnectorError>;

    /// Called when an export run has changes to send (its queue read, not
    /// yet ordered nor batched): the connector may start preparing
    /// meanwhile (a file connector reads its file). A run with nothing to
    /// send is not announced. No batch may follow (the run can stop or
    /// fail first), so what is prepared must be cheap to abandon, and a
    /// preparation that fails must be retried or reported by
    /// [`Connector::export`]. [`Connector::export_finished`] follows in
    /// every case.
    async fn export_starting(&self) {}

    /// Called when an export run has sent its last batch, or stopped early:
    /// the connector may drop what it kept between batches, or leave what
    /// helps the next run (a file connector leaves an index of its file).
    async fn export_finished(&self) {}
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefKind::Anchor => "anchor",
            RefKind::Dn => "dn",
        })
    }
}
