//! Full and delta import: the SQL each strategy runs (built from configured
//! identifiers only; the watermark is a bound parameter), rows streamed and
//! grouped into objects (a row and its child-table values), and watermarks.
//!
//! - Full import reads the source (table, view or query) joined with the
//!   child table, ordered by key only when there is a child table, and
//!   ends with the watermark taken *before* reading, so a change made
//!   meanwhile is read again by the next delta, never skipped.
//! - Watermark column: rows above the stored value, in column order; a
//!   watermark is emitted only between rows of different values, so a
//!   later import never skips a row that shares the last value.
//! - Change log: the log's rows above the stored sequence, each joined to
//!   the source's current row; a `delete`, or a key no longer in the
//!   source, is a delete.
//! - Before a delta, the column's (or log's) highest value is compared with
//!   the stored watermark: lower means the table moved backwards (a
//!   restored backup, a recreated log), which is a `WatermarkExpired` error
//!   asking for a full import, never a silent gap.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{ConnectorError, ImportEvent, ImportStream, ImportedObject, ItemError};
use rules::Value;

use super::anchor;
use super::db::{connector_error, quote, quote_column, Db, DbError, DbRow, Param};
use super::watermark::{below, Mark};
use super::Settings;
use crate::common::stream::{self, Sink, Stop};
use crate::sql::config::Delta;

/// Result columns mvsync adds to a source row (never an attribute).
const OWN: &str = "mvsync:";
const ATTR: &str = "mvsync:attribute";
const VALUE: &str = "mvsync:value";
const SEQ: &str = "mvsync:seq";
const OP: &str = "mvsync:op";
const LOG_KEY: &str = "mvsync:key:";

/// How many objects pass between two intermediate watermarks.
const MARK_EVERY: usize = 1000;

/// What a read is.
#[derive(Debug, Clone)]
enum Mode {
    /// A full import, ending with the watermark taken before it.
    Full(Option<Mark>),
    /// A watermark-column delta from this value (and the anchor of a row
    /// that held it).
    Column {
        column: String,
        from: Option<(Value, String)>,
    },
    /// A change-log delta from this sequence.
    Log { from: Option<i64> },
}

impl Settings {
    /// The source as a FROM item: the table, or the query in parentheses.
    pub(crate) fn relation(&self) -> String {
        match (&self.config.query, &self.config.table) {
            (Some(q), _) => format!("({q})"),
            (None, Some(t)) => quote(t),
            (None, None) => unreachable_source(),
        }
    }

    fn keys_of(&self, alias: &str) -> String {
        self.keys
            .iter()
            .map(|k| format!("{alias}.{}", quote_column(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn keys_match(&self, left: &str, right: &str) -> String {
        self.keys
            .iter()
            .map(|k| {
                let k = quote_column(k);
                format!("{left}.{k} = {right}.{k}")
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The child table's columns and join, when there is one.
    fn child(&self) -> (String, String) {
        match &self.config.multi_valued {
            None => (String::new(), String::new()),
            Some(c) => (
                format!(
                    ", mvc.{} AS \"{ATTR}\", mvc.{} AS \"{VALUE}\"",
                    quote_column(&c.attribute_column),
                    quote_column(&c.value_column)
                ),
                format!(
                    " LEFT JOIN {} AS mvc ON {}",
                    quote(&c.table),
                    self.keys_match("mvc", "src")
                ),
            ),
        }
    }

    fn full_sql(&self) -> String {
        let (select, join) = self.child();
        let order = if join.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", self.keys_of("src"))
        };
        format!(
            "SELECT src.*{select} FROM {} AS src{join}{order}",
            self.relation()
        )
    }

    fn column_sql(&self, column: &str, from: bool, pg_type: Option<&str>) -> String {
        let (select, join) = self.child();
        let col = format!("src.{}", quote_column(column));
        // A row without a value is never read by a delta (only by a full
        // import): it has no place in the column's order.
        let filter = if from {
            format!(
                " WHERE {col} IS NOT NULL AND {col} > {}",
                self.kind.param(1, pg_type)
            )
        } else {
            format!(" WHERE {col} IS NOT NULL")
        };
        format!(
            "SELECT src.*{select} FROM {} AS src{join}{filter} ORDER BY {col}, {}",
            self.relation(),
            self.keys_of("src")
        )
    }

    fn log_sql(&self, from: bool, pg_type: Option<&str>) -> String {
        let Some(Delta::ChangeLog {
            table,
            sequence,
            operation,
        }) = &self.config.delta
        else {
            return String::new();
        };
        let (select, join) = self.child();
        let seq = format!("cl.{}", quote_column(sequence));
        let keys: String = self
            .keys
            .iter()
            .map(|k| {
                format!(
                    ", cl.{} AS \"{LOG_KEY}{}\"",
                    quote_column(k),
                    k.replace('"', "")
                )
            })
            .collect();
        let filter = if from {
            format!(" WHERE {seq} > {}", self.kind.param(1, pg_type))
        } else {
            String::new()
        };
        format!(
            "SELECT {seq} AS \"{SEQ}\", cl.{} AS \"{OP}\"{keys}, src.*{select} FROM {} AS cl LEFT JOIN {} AS src ON {}{join}{filter} ORDER BY {seq}, {}",
            quote_column(operation),
            quote(table),
            self.relation(),
            self.keys_match("src", "cl"),
            self.keys_of("cl")
        )
    }

    /// The mark a delta would resume from now (the column's highest value
    /// and a row holding it, or the log's highest sequence), read before a
    /// full import and before each delta, with the column's PostgreSQL type.
    async fn current_mark(
        &self,
        db: &Db,
    ) -> Result<Option<(Mark, Option<String>)>, ConnectorError> {
        let read = |e: DbError| connector_error(&db.shown, "cannot read the delta watermark", &e);
        match &self.config.delta {
            None => Ok(None),
            Some(Delta::Watermark { column, .. }) => {
                let from = format!("{} AS src", self.relation());
                let types = db.relation_types(&from).await.map_err(read)?;
                let col = format!("src.{}", quote_column(column));
                let sql = format!(
                    "SELECT {col}, {} FROM {from} WHERE {col} IS NOT NULL ORDER BY {col} DESC LIMIT 1",
                    self.keys_of("src")
                );
                let top = db.fetch_optional(&sql, Vec::new()).await.map_err(read)?;
                let mark = top.and_then(|row| {
                    let mut values = row.values.into_iter();
                    let value = values.next()?;
                    let key: Vec<Value> = values.collect();
                    let anchor =
                        anchor::encode(&key.iter().collect::<Vec<_>>()).unwrap_or_default();
                    Some((value, anchor))
                });
                Ok(Some((Mark::Column(mark), types.get(column).cloned())))
            }
            Some(Delta::ChangeLog {
                table, sequence, ..
            }) => {
                let types = db.relation_types(&quote(table)).await.map_err(read)?;
                let sql = format!(
                    "SELECT MAX({}) AS m FROM {}",
                    quote_column(sequence),
                    quote(table)
                );
                let max = db.fetch_optional(&sql, Vec::new()).await.map_err(read)?;
                let value = max.and_then(|r| r.values.into_iter().next());
                let seq = match value {
                    None | Some(Value::Null) => None,
                    Some(Value::Int(i)) => Some(i),
                    Some(other) => {
                        return Err(ConnectorError::of(
                            engine::ConnectorErrorKind::Configuration,
                            format!(
                                "{}: the change log's sequence column {sequence} holds {other:?}; expected an integer",
                                db.shown
                            ),
                        ))
                    }
                };
                Ok(Some((Mark::Log(seq), types.get(sequence).cloned())))
            }
        }
    }

    /// The watermark column's value in the row with this anchor, `None`
    /// when there is no such row.
    async fn value_of(
        &self,
        db: &Db,
        column: &str,
        anchor: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let read = |e: DbError| connector_error(&db.shown, "cannot read the delta watermark", &e);
        let what = format!("src.{}", quote_column(column));
        let row = self
            .select_by_anchor(db, &what, anchor)
            .await
            .map_err(read)?;
        Ok(row.and_then(|r| r.values.into_iter().next()))
    }

    /// `SELECT what` from the source's row whose key columns hold the
    /// anchor's parts (each a parameter, cast to its column's type).
    pub(crate) async fn select_by_anchor(
        &self,
        db: &Db,
        what: &str,
        anchor: &str,
    ) -> Result<Option<DbRow>, DbError> {
        let Some(key) = anchor::decode(anchor, self.keys.len()) else {
            return Ok(None);
        };
        let from = format!("{} AS src", self.relation());
        let types = db.relation_types(&from).await?;
        let mut params = Vec::new();
        let conditions: Vec<String> = self
            .keys
            .iter()
            .zip(key)
            .enumerate()
            .map(|(i, (k, v))| {
                let ty = types.get(k).map(String::as_str);
                params.push(Param::Text(v).for_column(db.kind, ty));
                format!("src.{} = {}", quote_column(k), db.kind.param(i + 1, ty))
            })
            .collect();
        let sql = format!(
            "SELECT {what} FROM {from} WHERE {}",
            conditions.join(" AND ")
        );
        db.fetch_optional(&sql, params).await
    }
}

fn unreachable_source() -> String {
    // `validate` requires a table or a query; an empty relation fails in
    // the database with its own message rather than panicking here.
    String::from("(SELECT 1 WHERE 1 = 0)")
}

/// A full import.
pub(crate) async fn full(settings: Arc<Settings>, db: Db) -> Result<ImportStream, ConnectorError> {
    let mark = settings.current_mark(&db).await?.map(|(m, _)| m);
    let sql = settings.full_sql();
    Ok(read(settings, db, sql, Vec::new(), Mode::Full(mark)))
}

/// A delta import from `watermark` (`None`: from the beginning).
pub(crate) async fn delta(
    settings: Arc<Settings>,
    db: Db,
    watermark: Option<&str>,
) -> Result<ImportStream, ConnectorError> {
    let expired = |m: String| ConnectorError::watermark_expired(format!("{}: {m}", db.shown));
    let stored = watermark
        .map(Mark::decode)
        .transpose()
        .map_err(|e| expired(format!("{e}; a full import starts the delta again")))?;
    let Some((now, pg_type)) = settings.current_mark(&db).await? else {
        return Err(ConnectorError::of(
            engine::ConnectorErrorKind::Configuration,
            format!(
                "{}: delta import needs `delta` in the connector's configuration",
                db.shown
            ),
        ));
    };
    let pg_type = pg_type.as_deref();
    match (&settings.config.delta, stored, now) {
        (Some(Delta::Watermark { column, .. }), None | Some(Mark::Column(None)), _) => {
            let sql = settings.column_sql(column, false, None);
            let mode = Mode::Column {
                column: column.clone(),
                from: None,
            };
            Ok(read(settings.clone(), db, sql, Vec::new(), mode))
        }
        (
            Some(Delta::Watermark { column, overlap }),
            Some(Mark::Column(Some(from))),
            Mark::Column(top),
        ) => {
            let (value, anchor) = &from;
            let behind = top.as_ref().is_none_or(|(max, _)| below(max, value));
            if behind {
                // The row that held the mark: deleted (the mark stands), or
                // still there with a lower value (the table moved back).
                match settings.value_of(&db, column, anchor).await? {
                    None if !anchor.is_empty() => {}
                    now => {
                        let now = now
                            .or(top.map(|(max, _)| max))
                            .map_or("no value at all".to_owned(), |m| m.to_string());
                        return Err(expired(format!(
                            "the watermark column {column} moved backwards: the row that held {value} now holds {now} (a restored backup, or rows rewritten with older values); changes may have been missed: run a full import"
                        )));
                    }
                }
            }
            let sql = settings.column_sql(column, true, pg_type);
            // Read again a little below the mark (late commits); the mark
            // itself never moves back.
            let read_from = match value {
                Value::Int(i) => Value::Int(i.saturating_sub(*overlap)),
                Value::DateTime(us) => Value::DateTime(us.saturating_sub(overlap.saturating_mul(1_000_000))),
                other => other.clone(),
            };
            let params = vec![Param::of(&read_from).for_column(db.kind, pg_type)];
            let mode = Mode::Column {
                column: column.clone(),
                from: Some(from),
            };
            Ok(read(settings.clone(), db, sql, params, mode))
        }
        (Some(Delta::ChangeLog { .. }), None | Some(Mark::Log(None)), _) => {
            let sql = settings.log_sql(false, None);
            Ok(read(settings.clone(), db, sql, Vec::new(), Mode::Log { from: None }))
        }
        (Some(Delta::ChangeLog { table, .. }), Some(Mark::Log(Some(from))), Mark::Log(max)) => {
            // An empty log was purged of what was imported: nothing to read.
            // Entries below the mark mean it was recreated.
            if let Some(max) = max.filter(|m| *m < from) {
                return Err(expired(format!(
                    "the change log {table} is at sequence {max}, below sequence {from}, which the last import reached (the log was recreated); changes may have been missed: run a full import"
                )));
            }
            let sql = settings.log_sql(true, pg_type);
            let params = vec![Param::Int(from).for_column(db.kind, pg_type)];
            Ok(read(settings.clone(), db, sql, params, Mode::Log { from: Some(from) }))
        }
        _ => Err(expired(
            "the stored watermark was taken by the other delta strategy (the configuration's `delta` changed); run a full import".to_owned(),
        )),
    }
}

/// One object being put together from consecutive rows.
struct Group {
    id: Vec<Value>,
    row: DbRow,
    child: BTreeMap<String, Vec<Value>>,
}

fn read(
    settings: Arc<Settings>,
    db: Db,
    sql: String,
    params: Vec<Param>,
    mode: Mode,
) -> ImportStream {
    stream::spawn(move |sink| async move {
        let mut rows = db.stream(sql, params);
        let mut reader = Reader::new(&settings, &db, mode, sink);
        let stopped = |e| connector_error(&db.shown, "the import stopped", &e);
        while let Some(row) = rows.next().await.map_err(stopped)? {
            reader.row(row).await?;
        }
        reader.finish().await
    })
}

/// Groups rows into objects and emits them with watermarks.
struct Reader<'a> {
    settings: &'a Settings,
    db: &'a Db,
    mode: Mode,
    sink: Sink,
    current: Option<Group>,
    /// The last position emitted (column value or sequence), and the
    /// position of the objects emitted since, with the anchor of one of
    /// them (the watermark column's mark names a row that held it).
    emitted: Option<Value>,
    position: Option<Value>,
    position_anchor: String,
    since_mark: usize,
    rows: u64,
}

impl<'a> Reader<'a> {
    fn new(settings: &'a Settings, db: &'a Db, mode: Mode, sink: Sink) -> Self {
        let (start, anchor) = match &mode {
            Mode::Full(_) => (None, String::new()),
            Mode::Column { from, .. } => (
                from.as_ref().map(|(v, _)| v.clone()),
                from.as_ref().map(|(_, a)| a.clone()).unwrap_or_default(),
            ),
            Mode::Log { from } => (from.map(Value::Int), String::new()),
        };
        Reader {
            settings,
            db,
            mode,
            sink,
            current: None,
            emitted: start.clone(),
            position: start,
            position_anchor: anchor,
            since_mark: 0,
            rows: 0,
        }
    }

    /// The columns that tell one object's rows from the next one's.
    fn group_id(&self, row: &DbRow) -> Vec<Value> {
        match self.mode {
            Mode::Log { .. } => std::iter::once(SEQ.to_owned())
                .chain(
                    self.settings
                        .keys
                        .iter()
                        .map(|k| format!("{LOG_KEY}{}", k.replace('"', ""))),
                )
                .map(|c| row.get(&c).cloned().unwrap_or_default())
                .collect(),
            _ => self
                .settings
                .keys
                .iter()
                .map(|k| row.get(k).cloned().unwrap_or_default())
                .collect(),
        }
    }

    async fn row(&mut self, row: DbRow) -> Result<(), Stop> {
        self.rows += 1;
        // The child-table value this row carries, if any (taken before the
        // row moves into its group: no row is copied).
        let child = match (row.get(ATTR), row.get(VALUE)) {
            (Some(Value::Str(attr)), Some(value))
                if !value.is_null() && self.settings.config.is_child(attr) =>
            {
                Some((attr.clone(), value.clone()))
            }
            _ => None,
        };
        let id = self.group_id(&row);
        if self.current.as_ref().is_none_or(|g| g.id != id) {
            if let Some(done) = self.current.take() {
                self.emit(done).await?;
            }
            self.current = Some(Group {
                id,
                row,
                child: BTreeMap::new(),
            });
        }
        if let (Some((attr, value)), Some(g)) = (child, self.current.as_mut()) {
            g.child.entry(attr).or_default().push(value);
        }
        Ok(())
    }

    /// Where this group stands in the delta's order.
    fn position_of(&self, group: &Group) -> Option<Value> {
        match &self.mode {
            Mode::Full(_) => None,
            Mode::Column { column, .. } => group.row.get(column).cloned(),
            Mode::Log { .. } => group.row.get(SEQ).cloned(),
        }
    }

    async fn emit(&mut self, group: Group) -> Result<(), Stop> {
        let position = self.position_of(&group);
        // A watermark only between different positions: everything at the
        // previous position has been emitted.
        // A row read again below the mark (an overlap) never moves it back.
        let advances = match (&position, &self.position) {
            (Some(p), Some(current)) => below(current, p),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if advances && self.since_mark >= MARK_EVERY {
            self.mark().await?;
        }
        if advances {
            self.position = position;
            let key: Vec<&Value> = self
                .settings
                .keys
                .iter()
                .map(|k| group.row.get(k).unwrap_or(&Value::Null))
                .collect();
            self.position_anchor = anchor::encode(&key).unwrap_or_default();
        }
        self.since_mark += 1;
        let event = match &self.mode {
            Mode::Log { .. } => self.log_event(group),
            _ => self.object(group, &self.settings.keys),
        };
        match event {
            Ok(event) => self.sink.event(event).await?,
            Err(bad) => self.sink.bad(bad).await?,
        }
        Ok(())
    }

    /// Emits the watermark of the current position.
    async fn mark(&mut self) -> Result<(), Stop> {
        if self.position != self.emitted {
            if let Some(mark) = self.mark_at(self.position.clone()) {
                self.sink
                    .event(ImportEvent::Watermark(mark.encode()))
                    .await?;
            }
            self.emitted = self.position.clone();
        }
        self.since_mark = 0;
        Ok(())
    }

    fn mark_at(&self, position: Option<Value>) -> Option<Mark> {
        match &self.mode {
            Mode::Full(mark) => mark.clone(),
            Mode::Column { .. } => Some(Mark::Column(
                position.map(|p| (p, self.position_anchor.clone())),
            )),
            Mode::Log { .. } => Some(Mark::Log(match position {
                Some(Value::Int(i)) => Some(i),
                _ => None,
            })),
        }
    }

    /// The object a source row (and its child values) describes.
    fn object(&self, group: Group, keys: &[String]) -> Result<ImportEvent, ItemError> {
        let config = &self.settings.config;
        let key: Vec<&Value> = keys
            .iter()
            .map(|k| group.row.get(k).unwrap_or(&Value::Null))
            .collect();
        let Some(anchor) = anchor::encode(&key) else {
            return Err(self.bad_row(&group, "a key column is null: the row has no anchor"));
        };
        let mut attributes: Vec<(String, Value)> = group
            .row
            .columns
            .iter()
            .zip(group.row.values)
            .filter(|(c, v)| !c.starts_with(OWN) && !v.is_null())
            .map(|(c, v)| {
                // A reference names another row by its key's text.
                let v = if config.references.contains_key(c.as_str()) {
                    Value::str(v.to_string())
                } else {
                    v
                };
                (c.clone(), v)
            })
            .collect();
        for (attr, values) in group.child {
            attributes.push((attr, Value::list(values)));
        }
        Ok(ImportEvent::Object(ImportedObject {
            anchor,
            object_type: config.object_type.clone(),
            dn: None,
            attributes,
        }))
    }

    /// A change-log row: a delete, or the source's current row.
    fn log_event(&self, group: Group) -> Result<ImportEvent, ItemError> {
        let op = match group.row.get(OP) {
            Some(Value::Str(s)) => s.trim().to_ascii_lowercase(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let log_keys: Vec<String> = self
            .settings
            .keys
            .iter()
            .map(|k| format!("{LOG_KEY}{}", k.replace('"', "")))
            .collect();
        let key: Vec<&Value> = log_keys
            .iter()
            .map(|k| group.row.get(k).unwrap_or(&Value::Null))
            .collect();
        let Some(anchor) = anchor::encode(&key) else {
            return Err(self.bad_row(&group, "the change's key is null"));
        };
        let gone = self
            .settings
            .keys
            .iter()
            .all(|k| group.row.get(k).is_none_or(Value::is_null));
        match op.as_str() {
            "delete" | "d" | "remove" => Ok(ImportEvent::Delete { anchor }),
            "insert" | "i" | "add" | "update" | "u" | "modify" if gone => {
                // Changed, then deleted before this import: it is gone.
                Ok(ImportEvent::Delete { anchor })
            }
            "insert" | "i" | "add" | "update" | "u" | "modify" => {
                let keys = self.settings.keys.clone();
                self.object(group, &keys)
            }
            _ => Err(self.bad_row(
                &group,
                &format!("operation {op:?}: expected insert, update or delete"),
            )),
        }
    }

    fn bad_row(&self, group: &Group, message: &str) -> ItemError {
        let place = match (&self.mode, group.row.get(SEQ)) {
            (Mode::Log { .. }, Some(seq)) => {
                let table = match &self.settings.config.delta {
                    Some(Delta::ChangeLog { table, .. }) => table.as_str(),
                    _ => "",
                };
                format!("{} {table} sequence {seq}", self.db.shown)
            }
            _ => format!("{} row {}", self.db.shown, self.rows),
        };
        ItemError {
            location: place,
            message: message.to_owned(),
        }
    }

    async fn finish(mut self) -> Result<(), Stop> {
        if let Some(done) = self.current.take() {
            self.emit(done).await?;
        }
        let last = match &self.mode {
            Mode::Full(mark) => mark.clone(),
            _ => self.mark_at(self.position.clone()),
        };
        if let Some(mark) = last {
            self.sink
                .event(ImportEvent::Watermark(mark.encode()))
                .await?;
        }
        Ok(())
    }
}
