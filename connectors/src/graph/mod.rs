//! The Microsoft Graph connector: Entra ID users and groups.
//!
//! - [`config`]: the keys an operator writes, and their validation.
//! - `client`: the access token (client credentials), requests with
//!   throttling honoured, the client-side write pace, Graph's error bodies.
//! - `import`: full and delta import through delta query; `watermark`:
//!   the stored delta links.
//! - `export`: each change planned as a chain of requests (creates,
//!   updates, deletes, `$ref` changes); `batch`: the chains sent in JSON
//!   batches of at most 20 requests, each answer mapped to its object.
//!
//! What the engine sees:
//! - The anchor is the object's `id`, which Graph assigns: adds are
//!   recorded in flight, and `find_added` looks for a user by its
//!   `userPrincipalName` (a group by its `mailNickname`).
//! - `manager` (users) and `members` (groups) are references by id.
//! - Objects have no DN.
//!
//! Invariant: the client secret and the access token reach only the
//! configured token endpoint and Graph, and never a message or a log.

mod assertion;
mod batch;
mod client;
pub mod config;
mod export;
mod import;
mod watermark;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use engine::{
    AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorErrorKind, ConnectorInfo,
    ExportChange, ExportOp, ExportReport, ImportStream, ObjectTypeSchema, RefKind,
};
use rules::{Value, ValueType};
use serde_json::Value as Json;

pub use config::{GraphConfig, GraphConfigError};

use client::Client;
use config::{reference_of, ObjectType};
use import::Round;
use watermark::Watermark;

/// Graph's documented limit for identity writes per app and tenant:
/// 3,000 requests per 150 seconds.
const DOCUMENTED_WRITES: (f64, f64) = (3000.0, 150.0);

/// A validated configuration, with what every part needs from it.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: GraphConfig,
    /// The config file's folder, for the CA file and secret files.
    pub(crate) base_dir: PathBuf,
    /// Graph's base URL without a trailing slash.
    pub(crate) graph_url: String,
    /// The service and the token endpoint as messages name them.
    pub(crate) graph_shown: String,
    pub(crate) authority_shown: String,
}

/// An Entra ID tenant through Microsoft Graph.
pub struct GraphConnector {
    settings: Arc<Settings>,
    client: Arc<Client>,
}

impl GraphConnector {
    /// Builds the connector; touches neither the network nor the secret.
    pub fn new(config: GraphConfig, base_dir: &Path) -> Result<GraphConnector, GraphConfigError> {
        config.validate()?;
        let graph_url = config.graph_url.trim_end_matches('/').to_owned();
        let origin = |u: &str| {
            url::Url::parse(u)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|_| u.to_owned())
        };
        let settings = Arc::new(Settings {
            graph_shown: origin(&graph_url),
            authority_shown: origin(&config.authority),
            graph_url,
            config,
            base_dir: base_dir.to_owned(),
        });
        Ok(GraphConnector {
            client: Arc::new(Client::new(settings.clone())),
            settings,
        })
    }

    /// A connector sharing this one's client (for the import task).
    fn handle(&self) -> GraphConnector {
        GraphConnector {
            settings: self.settings.clone(),
            client: self.client.clone(),
        }
    }

    fn import(&self, mark: Watermark, round: Round) -> ImportStream {
        let connector = self.handle();
        crate::common::stream::spawn(move |sink| async move {
            import::run(&connector, mark, round, sink).await
        })
    }

    fn schema(name: &str, ty: &ObjectType) -> ObjectTypeSchema {
        let reference = reference_of(name);
        ObjectTypeSchema {
            name: name.to_owned(),
            anchor_attribute: None,
            attributes: ty
                .attributes
                .iter()
                .map(|a| AttributeSchema {
                    name: a.clone(),
                    value_type: if a == reference {
                        ValueType::Reference
                    } else if ObjectType::is_boolean(a) {
                        ValueType::Boolean
                    } else {
                        ValueType::String
                    },
                    multi_valued: ty.is_multi(name, a),
                    reference: (a == reference).then_some(RefKind::Anchor),
                })
                .collect(),
        }
    }
}

#[async_trait]
impl Connector for GraphConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            object_types: self
                .settings
                .config
                .object_types
                .iter()
                .map(|(name, ty)| GraphConnector::schema(name, ty))
                .collect(),
            delta_import: true,
            export: true,
            has_dn: false,
            rewrites_dn_references: false,
            export_batch_size: self.settings.config.export_batch_size,
        }
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        Ok(self.import(Watermark::default(), Round::Initial))
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        match watermark {
            // No delta link yet: the initial round, which ends with one.
            None => Ok(self.import(Watermark::default(), Round::Initial)),
            Some(text) => {
                let mark = Watermark::parse(text)?;
                for (name, ty) in &self.settings.config.object_types {
                    let Some(link) = mark.link(name, &ty.select())? else {
                        return Err(ConnectorError::watermark_expired(format!(
                            "the watermark holds no delta link for `{name}` (a type added since the last full import): run a full import"
                        )));
                    };
                    self.client.check_link(link).map_err(|_| {
                        ConnectorError::watermark_expired(format!(
                            "the stored delta link of `{name}` is not on {} (the service changed): run a full import",
                            self.settings.graph_url
                        ))
                    })?;
                }
                Ok(self.import(mark, Round::Delta))
            }
        }
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        Ok(self.export_changes(batch).await)
    }

    async fn find_added(&self, change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        let ExportOp::Add { attributes } = &change.op else {
            return Ok(None);
        };
        let mut key = Vec::new();
        for name in export::keys_of(&change.object_type) {
            let Some(value) = attributes
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.as_str())
            else {
                return Err(ConnectorError::of(
                    ConnectorErrorKind::Configuration,
                    format!(
                        "an add of a {} may have been applied, but it has no `{name}` to look it up by: map `{name}` in the outbound rule",
                        change.object_type
                    ),
                ));
            };
            key.push(((*name).to_owned(), value.to_owned()));
        }
        self.find(&change.object_type, &key).await
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let mut checks = Vec::new();
        let org = self
            .client
            .get(
                &self.client.url("/organization?$select=id,displayName"),
                "reading the organization",
            )
            .await?;
        let tenant = org["value"][0]["displayName"]
            .as_str()
            .unwrap_or("(unnamed)")
            .to_owned();
        checks.push(format!(
            "got a token from {} for app {}",
            self.settings.authority_shown, self.settings.config.client_id
        ));
        checks.push(format!(
            "reached {} (tenant {tenant})",
            self.settings.graph_shown
        ));
        for (name, ty) in &self.settings.config.object_types {
            let url = self.client.url(&format!(
                "/{}?$top=1&$select={}",
                import::collection(name),
                ty.attributes
                    .iter()
                    .filter(|a| *a != reference_of(name))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            self.client
                .get(&url, &format!("reading {}", import::collection(name)))
                .await?;
            checks.push(format!(
                "can read {} with {} selected properties",
                import::collection(name),
                ty.attributes.len()
            ));
        }
        Ok(CheckReport { checks })
    }

    async fn export_finished(&self) {
        let stats = self.client.take_stats().await;
        if stats.writes == 0 {
            return;
        }
        let seconds = stats.elapsed.as_secs_f64().max(0.001);
        let (limit, window) = DOCUMENTED_WRITES;
        tracing::info!(
            "sent {} write request(s) in {:.1} s ({:.1} per second; {:.1} s waiting for the client-side limit of {} per second); at Graph's documented limit of {limit} writes per {window} s per app and tenant they take at least {:.1} s",
            stats.writes,
            seconds,
            stats.writes as f64 / seconds,
            stats.paced.as_secs_f64(),
            self.settings.config.writes_per_second,
            stats.writes as f64 * window / limit,
        );
    }
}

/// A Graph JSON value as a value: strings, booleans and integers keep
/// their type; an array is a list (empty: no value); an object (a complex
/// property) is kept as its JSON text.
pub(crate) fn value_of(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Str(n.to_string()), Value::Int),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::list(items.iter().map(value_of).filter(|v| !v.is_null())),
        Json::Object(_) => Value::Str(json.to_string()),
    }
}

/// A value as Graph JSON: the inverse of [`value_of`]; date-times as
/// ISO 8601 in UTC, bytes as base64.
pub(crate) fn json_of(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Str(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Bool(b) => Json::Bool(*b),
        Value::Bytes(b) => {
            use base64::Engine as _;
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::DateTime(_) => Json::String(value.to_string()),
        Value::Ref(id) => Json::String(id.to_string()),
        Value::List(items) => Json::Array(items.iter().map(json_of).collect()),
    }
}
