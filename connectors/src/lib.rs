//! mvsync connectors: one module per connected-system family, each
//! implementing [`engine::Connector`].
//!
//! A connector's configuration is one variant of [`ConnectorConfig`], tagged
//! by its `type` key, so adding a connector family is one variant and one
//! module, and an unknown `type` is a deserialisation error with a position.
//!
//! Invariant: connectors depend on the engine, never the other way round; a
//! connector never sees store ids, only its own anchors and attribute names.

pub mod common;
pub mod csv;
#[cfg(feature = "testkit")]
pub mod fault;
pub mod graph;
pub mod ldap;
pub mod sql;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The configuration of one connected system, as written under
/// `[connectors.<name>]`, selected by its `type` key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
// A handful of configurations, read once: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ConnectorConfig {
    /// A CSV file (`type = "csv"`).
    Csv(csv::CsvConfig),
    /// A PostgreSQL or SQLite table, view or query (`type = "sql"`).
    Sql(sql::SqlConfig),
    /// An LDAP directory: Active Directory, OpenLDAP (`type = "ldap"`).
    Ldap(ldap::LdapConfig),
    /// Entra ID through Microsoft Graph (`type = "graph"`).
    Graph(graph::GraphConfig),
    /// The end-to-end tests' system with faults (`type = "fault"`; cargo
    /// feature `testkit` only).
    #[cfg(feature = "testkit")]
    Fault(fault::FaultConfig),
}

impl ConnectorConfig {
    /// Builds the connector; relative paths resolve against `base_dir` (the
    /// config file's folder). Touches no connected system: an invalid
    /// configuration fails here with every problem listed, a missing file
    /// only when a step reads it.
    pub fn build(
        &self,
        base_dir: &Path,
    ) -> Result<Box<dyn engine::Connector>, engine::ConnectorError> {
        match self {
            ConnectorConfig::Csv(config) => {
                let connector = csv::CsvConnector::new(config.clone(), base_dir)
                    .map_err(|e| engine::ConnectorError::new(e.to_string()))?;
                Ok(Box::new(connector))
            }
            ConnectorConfig::Sql(config) => {
                let connector = sql::SqlConnector::new(config.clone(), base_dir).map_err(|e| {
                    engine::ConnectorError::of(
                        engine::ConnectorErrorKind::Configuration,
                        e.to_string(),
                    )
                })?;
                Ok(Box::new(connector))
            }
            ConnectorConfig::Ldap(config) => {
                let connector =
                    ldap::LdapConnector::new(config.clone(), base_dir).map_err(|e| {
                        engine::ConnectorError::of(
                            engine::ConnectorErrorKind::Configuration,
                            e.to_string(),
                        )
                    })?;
                Ok(Box::new(connector))
            }
            ConnectorConfig::Graph(config) => {
                let connector =
                    graph::GraphConnector::new(config.clone(), base_dir).map_err(|e| {
                        engine::ConnectorError::of(
                            engine::ConnectorErrorKind::Configuration,
                            e.to_string(),
                        )
                    })?;
                Ok(Box::new(connector))
            }
            #[cfg(feature = "testkit")]
            ConnectorConfig::Fault(config) => Ok(Box::new(fault::FaultConnector::new(
                config.clone(),
                base_dir,
            )?)),
        }
    }

    /// Whether the configuration lists every attribute its objects have
    /// (`columns` for CSV), so that validation can call an undeclared one an
    /// error.
    pub fn declares_attributes(&self) -> bool {
        match self {
            ConnectorConfig::Csv(csv) => csv.columns.is_some(),
            ConnectorConfig::Sql(_) | ConnectorConfig::Ldap(_) | ConnectorConfig::Graph(_) => false,
            #[cfg(feature = "testkit")]
            ConnectorConfig::Fault(_) => false,
        }
    }

    /// The `type` key of this configuration (`"csv"`).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorConfig::Csv(_) => "csv",
            ConnectorConfig::Sql(_) => "sql",
            ConnectorConfig::Ldap(_) => "ldap",
            ConnectorConfig::Graph(_) => "graph",
            #[cfg(feature = "testkit")]
            ConnectorConfig::Fault(_) => "fault",
        }
    }
}
