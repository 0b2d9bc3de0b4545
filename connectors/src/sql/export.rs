//! Export: one transaction per batch, one savepoint per change, so a change
//! that fails (a constraint, a bad value) is rolled back alone and the
//! batch's others commit. Table mode writes `INSERT`, `UPDATE` of the changed
//! columns only and `DELETE`, and the child table's rows for multi-valued
//! attributes; statement mode runs the configured statement (or procedure
//! call) per operation with `:name` parameters. Values are always bound
//! parameters.
//!
//! A failure of the connection ends the batch with no change applied (the
//! server rolls the transaction back), which the engine keeps pending.

use std::collections::HashMap;

use engine::{
    Applied, AttrOp, ConnectorError, ExportChange, ExportFailure, ExportOp, ExportReport,
    ExportResult, FailureKind,
};
use rules::Value;

use super::anchor;
use super::db::{
    connector_error, export_failure, quote, quote_column, Db, DbError, Kind, Param, Tx,
};
use super::Settings;

/// What export needs to know of the database, read once per connector:
/// the column types of the table and the child table, and the parameter
/// types PostgreSQL infers for each configured statement.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub(crate) table: HashMap<String, String>,
    pub(crate) child: HashMap<String, String>,
    pub(crate) statements: HashMap<String, Vec<Option<String>>>,
}

/// Why one change did not apply.
enum Failed {
    /// This change failed; the batch goes on.
    Change(ExportFailure),
    /// The connection failed: the transaction is gone.
    Connection(sqlx::Error),
}

impl From<ExportFailure> for Failed {
    fn from(f: ExportFailure) -> Self {
        Failed::Change(f)
    }
}

/// A statement with its parameters, each converted for its column.
#[derive(Default)]
struct Stmt {
    sql: String,
    params: Vec<Param>,
}

impl Stmt {
    fn new(sql: impl Into<String>) -> Stmt {
        Stmt {
            sql: sql.into(),
            ..Stmt::default()
        }
    }

    /// Adds a parameter for a column of this type, returning its placeholder.
    fn param(&mut self, kind: Kind, value: Param, column_type: Option<&String>) -> String {
        let column_type = column_type.map(String::as_str);
        self.params.push(value.for_column(kind, column_type));
        kind.param(self.params.len(), column_type)
    }

    async fn run(self, tx: &mut Tx) -> Result<u64, sqlx::Error> {
        tx.execute(&self.sql, self.params).await
    }

    async fn fetch(self, tx: &mut Tx) -> Result<Option<Vec<Value>>, DbError> {
        tx.fetch_optional(&self.sql, self.params).await
    }
}

/// Applies a batch in one transaction.
pub(crate) async fn apply(
    settings: &Settings,
    db: &Db,
    schema: &Schema,
    batch: Vec<ExportChange>,
) -> Result<ExportReport, ConnectorError> {
    let lost = |e: DbError| connector_error(&db.shown, "the export batch was not applied", &e);
    let mut tx = db.begin().await.map_err(|e| lost(e.into()))?;
    let mut results = Vec::with_capacity(batch.len());
    let writer = Writer {
        settings,
        kind: db.kind,
        schema,
    };
    for change in &batch {
        let outcome = match writer.isolated(&mut tx, change).await {
            Ok(outcome) => outcome,
            Err(e) => return Err(lost(e)),
        };
        results.push(ExportResult {
            id: change.id,
            outcome,
        });
    }
    tx.commit().await.map_err(|e| lost(e.into()))?;
    Ok(ExportReport::complete(results))
}

struct Writer<'a> {
    settings: &'a Settings,
    kind: Kind,
    schema: &'a Schema,
}

impl Writer<'_> {
    /// Applies one change under a savepoint: a change that fails is rolled
    /// back alone. `Err` only when the connection failed.
    async fn isolated(
        &self,
        tx: &mut Tx,
        change: &ExportChange,
    ) -> Result<Result<Applied, ExportFailure>, DbError> {
        tx.execute("SAVEPOINT mvsync_change", Vec::new()).await?;
        match self.change(tx, change).await {
            Ok(applied) => {
                tx.execute("RELEASE SAVEPOINT mvsync_change", Vec::new())
                    .await?;
                Ok(Ok(applied))
            }
            Err(Failed::Change(failure)) => {
                tx.execute("ROLLBACK TO SAVEPOINT mvsync_change", Vec::new())
                    .await?;
                tx.execute("RELEASE SAVEPOINT mvsync_change", Vec::new())
                    .await?;
                Ok(Err(self.already_there(tx, change, failure).await?))
            }
            Err(Failed::Connection(e)) => Err(e.into()),
        }
    }

    /// A unique violation on an add means the object is already there only
    /// when a row holds its key; another unique column (a mail address
    /// someone else has) is the database's rule refusing the change.
    async fn already_there(
        &self,
        tx: &mut Tx,
        change: &ExportChange,
        mut failure: ExportFailure,
    ) -> Result<ExportFailure, DbError> {
        let ExportOp::Add { attributes } = &change.op else {
            return Ok(failure);
        };
        if failure.kind != FailureKind::AlreadyExists || self.settings.config.table.is_none() {
            return Ok(failure);
        }
        let Ok(anchor) = self.add_anchor(attributes) else {
            return Ok(failure);
        };
        let key = anchor::decode(&anchor, self.settings.keys.len()).unwrap_or_default();
        if self.exists(tx, &key).await? {
            failure.existing_anchor = Some(anchor);
        } else {
            failure.kind = FailureKind::RejectedByPolicy;
        }
        Ok(failure)
    }

    /// Whether a row of the table has this key.
    async fn exists(&self, tx: &mut Tx, key: &[String]) -> Result<bool, DbError> {
        let Ok(table) = self.table() else {
            return Ok(false);
        };
        let mut stmt = Stmt::new(format!("SELECT 1 FROM {table}"));
        self.where_key(&mut stmt, key, &self.schema.table);
        Ok(stmt.fetch(tx).await?.is_some())
    }

    async fn change(&self, tx: &mut Tx, change: &ExportChange) -> Result<Applied, Failed> {
        let is_add = matches!(change.op, ExportOp::Add { .. });
        let statements = self.settings.config.statements.as_ref();
        let kind = self.kind;
        let failed = |e: sqlx::Error| match export_failure(kind, &e, is_add) {
            Some(f) => Failed::Change(f),
            None => Failed::Connection(e),
        };
        let read_failed = |e: DbError| match e {
            DbError::Sql(e) => failed(e),
            // No answer: the connection is as good as lost.
            DbError::Silent(_) | DbError::ReaderLost => {
                Failed::Connection(sqlx::Error::PoolTimedOut)
            }
            DbError::Unsupported { column, type_name } => Failed::Change(permanent(format!(
                "the key column {column} has type {type_name}, which mvsync does not read"
            ))),
        };
        match &change.op {
            ExportOp::Add { attributes } => {
                if let Some(sql) = statements.and_then(|s| s.add.as_deref()) {
                    let anchor = self.add_anchor(attributes)?;
                    let values: HashMap<&str, &Value> =
                        attributes.iter().map(|(n, v)| (n.as_str(), v)).collect();
                    self.named("add", sql, &values)?
                        .run(tx)
                        .await
                        .map_err(failed)?;
                    return Ok(Applied {
                        anchor: Some(anchor),
                    });
                }
                self.add_anchor(attributes)?;
                let (insert, children) = self.insert(attributes)?;
                // The anchor is the key as stored (`007` into an integer
                // column is 7), so the next import finds the same anchor.
                let stored = insert
                    .fetch(tx)
                    .await
                    .map_err(read_failed)?
                    .unwrap_or_default();
                let parts: Vec<&Value> = stored.iter().collect();
                let anchor = anchor::encode(&parts)
                    .ok_or_else(|| permanent("the database returned no key for the new row"))?;
                let key = anchor::decode(&anchor, self.settings.keys.len()).unwrap_or_default();
                for (name, values) in children {
                    for stmt in self.child_inserts(&key, &name, &values) {
                        stmt.run(tx).await.map_err(failed)?;
                    }
                }
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
            ExportOp::Update { new_dn, changes } => {
                if new_dn.is_some() {
                    return Err(
                        permanent("a database row has no distinguished name to rename").into(),
                    );
                }
                let key = self.key(change)?;
                if let Some(sql) = statements.and_then(|s| s.update.as_deref()) {
                    let mut values: HashMap<&str, &Value> = HashMap::new();
                    for (name, op) in changes {
                        match op {
                            AttrOp::Replace(v) => values.insert(name, v),
                            AttrOp::Clear => values.insert(name, &Value::Null),
                            AttrOp::Add(_) | AttrOp::Remove(_) => {
                                return Err(permanent(format!(
                                    "{name}: adding or removing single values needs the child table (`multi_valued`), not an update statement"
                                ))
                                .into())
                            }
                        };
                    }
                    let key_values: Vec<Value> =
                        key.iter().map(|k| Value::str(k.clone())).collect();
                    for (k, v) in self.settings.keys.iter().zip(&key_values) {
                        values.insert(k, v);
                    }
                    self.named("update", sql, &values)?
                        .run(tx)
                        .await
                        .map_err(failed)?;
                    return Ok(Applied {
                        anchor: change.anchor.clone(),
                    });
                }
                let (update, child) = self.update(&key, changes)?;
                match update {
                    Some(stmt) => {
                        if stmt.run(tx).await.map_err(failed)? == 0 {
                            return Err(not_found().into());
                        }
                    }
                    // Child values only: the row must be there.
                    None => {
                        if !self.exists(tx, &key).await.map_err(read_failed)? {
                            return Err(not_found().into());
                        }
                    }
                }
                for stmt in child {
                    stmt.run(tx).await.map_err(failed)?;
                }
                Ok(Applied {
                    anchor: change.anchor.clone(),
                })
            }
            ExportOp::Delete => {
                let key = self.key(change)?;
                if let Some(sql) = statements.and_then(|s| s.delete.as_deref()) {
                    let key_values: Vec<Value> =
                        key.iter().map(|k| Value::str(k.clone())).collect();
                    let values: HashMap<&str, &Value> = self
                        .settings
                        .keys
                        .iter()
                        .map(String::as_str)
                        .zip(&key_values)
                        .collect();
                    self.named("delete", sql, &values)?
                        .run(tx)
                        .await
                        .map_err(failed)?;
                    return Ok(Applied {
                        anchor: change.anchor.clone(),
                    });
                }
                if let Some(c) = &self.settings.config.multi_valued {
                    let mut stmt = Stmt::new(format!("DELETE FROM {}", quote(&c.table)));
                    self.where_key(&mut stmt, &key, &self.schema.child);
                    stmt.run(tx).await.map_err(failed)?;
                }
                let mut stmt = Stmt::new(format!("DELETE FROM {}", self.table()?));
                self.where_key(&mut stmt, &key, &self.schema.table);
                if stmt.run(tx).await.map_err(failed)? == 0 {
                    return Err(not_found().into());
                }
                Ok(Applied {
                    anchor: change.anchor.clone(),
                })
            }
        }
    }

    fn table(&self) -> Result<String, ExportFailure> {
        self.settings
            .config
            .table
            .as_deref()
            .map(quote)
            .ok_or_else(|| permanent("no `table` to write and no statement for this operation"))
    }

    /// The anchor a new row will have: its key columns' values.
    fn add_anchor(&self, attributes: &[(String, Value)]) -> Result<String, ExportFailure> {
        let mut parts = Vec::new();
        for k in &self.settings.keys {
            match attributes.iter().find(|(n, _)| n == k) {
                Some((_, v)) if !v.is_null() => parts.push(v),
                _ => {
                    return Err(permanent(format!(
                    "the new row has no value for the key column {k}: an outbound flow must set it"
                )))
                }
            }
        }
        anchor::encode(&parts).ok_or_else(|| permanent("a key column is null"))
    }

    /// The key parts of an existing object.
    fn key(&self, change: &ExportChange) -> Result<Vec<String>, ExportFailure> {
        change
            .anchor
            .as_deref()
            .and_then(|a| anchor::decode(a, self.settings.keys.len()))
            .ok_or_else(|| {
                permanent(format!(
                    "anchor {:?} does not name a key of {} column(s)",
                    change.anchor.as_deref().unwrap_or(""),
                    self.settings.keys.len()
                ))
            })
    }

    fn where_key(&self, stmt: &mut Stmt, key: &[String], types: &HashMap<String, String>) {
        let mut conditions = Vec::new();
        for (k, v) in self.settings.keys.iter().zip(key) {
            let p = stmt.param(self.kind, Param::Text(v.clone()), types.get(k));
            conditions.push(format!("{} = {p}", quote_column(k)));
        }
        stmt.sql.push_str(" WHERE ");
        stmt.sql.push_str(&conditions.join(" AND "));
    }

    /// The INSERT of a new row (returning its key as stored), and its
    /// child-table values by attribute.
    #[allow(clippy::type_complexity)]
    fn insert(
        &self,
        attributes: &[(String, Value)],
    ) -> Result<(Stmt, Vec<(String, Vec<Value>)>), ExportFailure> {
        let mut stmt = Stmt::default();
        let (mut columns, mut values) = (Vec::new(), Vec::new());
        let mut children = Vec::new();
        for (name, value) in attributes {
            if self.settings.config.is_child(name) {
                children.push((name.clone(), value.items().to_vec()));
                continue;
            }
            if value.is_null() {
                continue;
            }
            columns.push(quote_column(name));
            values.push(stmt.param(self.kind, scalar(name, value)?, self.schema.table.get(name)));
        }
        let keys: Vec<String> = self.settings.keys.iter().map(|k| quote_column(k)).collect();
        stmt.sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            self.table()?,
            columns.join(", "),
            values.join(", "),
            keys.join(", ")
        );
        Ok((stmt, children))
    }

    /// The UPDATE of the changed columns, and the child-table statements.
    fn update(
        &self,
        key: &[String],
        changes: &[(String, AttrOp)],
    ) -> Result<(Option<Stmt>, Vec<Stmt>), ExportFailure> {
        let mut stmt = Stmt::default();
        let mut sets = Vec::new();
        let mut child = Vec::new();
        for (name, op) in changes {
            if self.settings.keys.contains(name) {
                return Err(permanent(format!(
                    "{name} is a key column: the key is the row's anchor and never changes"
                )));
            }
            if self.settings.config.is_child(name) {
                child.extend(self.child_change(key, name, op));
                continue;
            }
            let value = match op {
                AttrOp::Replace(v) => scalar(name, v)?,
                AttrOp::Clear => Param::Null,
                AttrOp::Add(_) | AttrOp::Remove(_) => {
                    return Err(permanent(format!(
                        "{name} holds one value; list it in `multi_valued.attributes` to keep several in the child table"
                    )))
                }
            };
            let p = stmt.param(self.kind, value, self.schema.table.get(name));
            sets.push(format!("{} = {p}", quote_column(name)));
        }
        if sets.is_empty() {
            return Ok((None, child));
        }
        stmt.sql = format!("UPDATE {} SET {}", self.table()?, sets.join(", "));
        self.where_key(&mut stmt, key, &self.schema.table);
        Ok((Some(stmt), child))
    }

    fn child_change(&self, key: &[String], name: &str, op: &AttrOp) -> Vec<Stmt> {
        match op {
            AttrOp::Add(values) => self.child_inserts(key, name, values),
            AttrOp::Remove(values) => values
                .iter()
                .map(|v| self.child_delete(key, name, Some(v)))
                .collect(),
            AttrOp::Clear => vec![self.child_delete(key, name, None)],
            AttrOp::Replace(v) => {
                let mut out = vec![self.child_delete(key, name, None)];
                out.extend(self.child_inserts(key, name, v.items()));
                out
            }
        }
    }

    fn child_inserts(&self, key: &[String], name: &str, values: &[Value]) -> Vec<Stmt> {
        let Some(c) = &self.settings.config.multi_valued else {
            return Vec::new();
        };
        let types = &self.schema.child;
        values
            .iter()
            .map(|value| {
                let mut stmt = Stmt::default();
                let mut columns = Vec::new();
                let mut params = Vec::new();
                for (k, v) in self.settings.keys.iter().zip(key) {
                    columns.push(quote_column(k));
                    params.push(stmt.param(self.kind, Param::Text(v.clone()), types.get(k)));
                }
                columns.push(quote_column(&c.attribute_column));
                params.push(stmt.param(
                    self.kind,
                    Param::Text(name.to_owned()),
                    types.get(&c.attribute_column),
                ));
                columns.push(quote_column(&c.value_column));
                params.push(stmt.param(
                    self.kind,
                    Param::Text(value.to_string()),
                    types.get(&c.value_column),
                ));
                stmt.sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote(&c.table),
                    columns.join(", "),
                    params.join(", ")
                );
                stmt
            })
            .collect()
    }

    fn child_delete(&self, key: &[String], name: &str, value: Option<&Value>) -> Stmt {
        let Some(c) = &self.settings.config.multi_valued else {
            return Stmt::new("SELECT 1");
        };
        let types = &self.schema.child;
        let mut stmt = Stmt::new(format!("DELETE FROM {}", quote(&c.table)));
        self.where_key(&mut stmt, key, types);
        let p = stmt.param(
            self.kind,
            Param::Text(name.to_owned()),
            types.get(&c.attribute_column),
        );
        stmt.sql
            .push_str(&format!(" AND {} = {p}", quote_column(&c.attribute_column)));
        if let Some(v) = value {
            let p = stmt.param(
                self.kind,
                Param::Text(v.to_string()),
                types.get(&c.value_column),
            );
            stmt.sql
                .push_str(&format!(" AND {} = {p}", quote_column(&c.value_column)));
        }
        stmt
    }

    /// A configured statement with its `:name` parameters bound; on
    /// PostgreSQL each cast to the type the server infers for it.
    fn named(
        &self,
        operation: &str,
        sql: &str,
        values: &HashMap<&str, &Value>,
    ) -> Result<Stmt, ExportFailure> {
        let types = self.schema.statements.get(operation);
        let kind = self.kind;
        let ty = |n: usize| types.and_then(|t| t.get(n - 1)).and_then(Option::as_deref);
        let (text, names) = named_parameters(sql, &|n| kind.param(n, ty(n)));
        let mut stmt = Stmt::new(text);
        for (i, name) in names.iter().enumerate() {
            let value = values.get(name.as_str()).copied().unwrap_or(&Value::Null);
            stmt.params
                .push(scalar(name, value)?.for_column(kind, ty(i + 1)));
        }
        Ok(stmt)
    }
}

/// One value for one column: a list cannot be.
fn scalar(name: &str, value: &Value) -> Result<Param, ExportFailure> {
    match value {
        Value::List(items) if items.len() > 1 => Err(permanent(format!(
            "{name} has {} values but its column holds one; list it in `multi_valued.attributes` to keep several in the child table",
            items.len()
        ))),
        Value::List(items) => Ok(items.first().map_or(Param::Null, Param::of)),
        v => Ok(Param::of(v)),
    }
}

fn permanent(message: impl Into<String>) -> ExportFailure {
    ExportFailure::new(FailureKind::Permanent, message)
}

fn not_found() -> ExportFailure {
    ExportFailure::new(FailureKind::NotFound, "no row has this key")
}

/// Replaces `:name` parameters with the dialect's placeholders (the same
/// name twice is the same parameter), outside quoted text, quoted
/// identifiers and comments, and leaves PostgreSQL's `::type` casts alone.
/// Returns the text and the names in placeholder order.
pub(crate) fn named_parameters(
    sql: &str,
    placeholder: &dyn Fn(usize) -> String,
) -> (String, Vec<String>) {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .map_or(chars.len(), |p| i + 1 + p);
                out.extend(&chars[i..(close + 1).min(chars.len())]);
                i = close + 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let end = chars[i..]
                    .iter()
                    .position(|&d| d == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.extend(&chars[i..end]);
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .map_or(chars.len(), |j| j + 2);
                out.extend(&chars[i..end]);
                i = end;
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push_str("::");
                i += 2;
            }
            ':' if chars
                .get(i + 1)
                .is_some_and(|d| d.is_alphabetic() || *d == '_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let index = match names.iter().position(|n| *n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name);
                        names.len()
                    }
                };
                out.push_str(&placeholder(index));
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_become_placeholders_outside_quotes_comments_and_casts() {
        let pg = |n: usize| Kind::Postgres.param(n, None);
        let (sql, names) = named_parameters(
            "CALL set_mail(:employee_id::int, :mail, ':not', \":nor\") -- :neither\n/* :nor */ ; SELECT :mail",
            &pg,
        );
        assert_eq!(
            sql,
            "CALL set_mail($1::int, $2, ':not', \":nor\") -- :neither\n/* :nor */ ; SELECT $2"
        );
        assert_eq!(names, ["employee_id", "mail"]);
        let sqlite = |n: usize| Kind::Sqlite.param(n, None);
        let (sql, _) = named_parameters("UPDATE t SET a = :a WHERE k = :k", &sqlite);
        assert_eq!(sql, "UPDATE t SET a = ?1 WHERE k = ?2");
    }
}
