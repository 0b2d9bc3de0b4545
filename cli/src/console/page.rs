//! The page around every view, and the pieces views share: values (escaped
//! by maud, secrets redacted), links, times, pagers. Nothing here reads
//! the store.

use maud::{html, Markup, DOCTYPE};
use rules::Value;

/// A whole page: the navigation, a title and the view.
pub fn layout(title: &str, section: Section, body: Markup) -> Markup {
    let nav = [
        (Section::Runs, "/runs", "Run history"),
        (Section::Connectors, "/connectors", "Connector spaces"),
        (Section::Metaverse, "/metaverse", "Metaverse"),
        (Section::Plan, "/plan", "Plan"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body {
                header {
                    a.brand href="/runs" { "mvsync" }
                    nav {
                        @for (s, href, label) in nav {
                            a href=(href) class=[(s == section).then_some("current")] { (label) }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page's head; `reload` makes the browser load it again every 5 s.
fn head(title: &str, reload: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            @if reload { meta http-equiv="refresh" content="5"; }
            title { (title) " · mvsync" }
            link rel="stylesheet" href="/assets/console.css";
        }
    }
}

/// Which part of the console a page belongs to (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Run history.
    Runs,
    /// Connector spaces and their pending exports.
    Connectors,
    /// The metaverse.
    Metaverse,
    /// The saved plan.
    Plan,
    /// None of them (an error page).
    None,
}

/// A page saying what went wrong, with a way on.
pub fn problem(title: &str, message: &str) -> Markup {
    layout(
        title,
        Section::None,
        html! { p.problem { (message) } p { a href="/runs" { "Back to the run history" } } },
    )
}

/// A page for while a run holds the store: it reloads itself.
pub fn busy(holder: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("A run holds the store", true))
            body {
                main {
                    h1 { "A run holds the store" }
                    p.problem { "The store is held by " (holder) ". The console gave it up so that the run could start; this page reloads every 5 seconds and shows the store again when the run ends." }
                }
            }
        }
    }
}

/// The value of attribute `name` for people: secrets redacted, lists one
/// value per line, metaverse references (`mv:<id>`) linked.
pub fn value(name: &str, v: &Value) -> Markup {
    if engine::audit::is_secret(name) && !v.is_null() {
        return html! { span.muted { (engine::audit::REDACTED) } };
    }
    match v {
        Value::Null => html! { span.muted { "—" } },
        Value::List(items) => html! {
            ul.values { @for i in items { li { (single(i)) } } }
        },
        other => single(other),
    }
}

/// A JSON value (as the engine's views give them) for people.
pub fn json_value(name: &str, v: &serde_json::Value) -> Markup {
    if engine::audit::is_secret(name) && !v.is_null() {
        return html! { span.muted { (engine::audit::REDACTED) } };
    }
    match v {
        serde_json::Value::Null => html! { span.muted { "—" } },
        serde_json::Value::String(s) => text_or_link(s),
        serde_json::Value::Array(items) => html! {
            ul.values { @for i in items { li { (json_value("", i)) } } }
        },
        other => html! { (other.to_string()) },
    }
}

fn single(v: &Value) -> Markup {
    match v {
        Value::Ref(id) => html! { a href=(format!("/metaverse/{id}")) { "mv:" (id) } },
        Value::Str(s) => text_or_link(s),
        other => html! { (other.to_string()) },
    }
}

fn text_or_link(s: &str) -> Markup {
    match s.strip_prefix("mv:").and_then(|id| id.parse::<u64>().ok()) {
        Some(id) => html! { a href=(format!("/metaverse/{id}")) { (s) } },
        None => html! { (s) },
    }
}

/// A time (microseconds since the epoch) in UTC.
pub fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| micros.to_string())
}

/// How long between two times, for people.
pub fn duration(from: i64, to: Option<i64>) -> String {
    let Some(to) = to else { return "—".into() };
    let ms = (to - from).max(0) / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A URL path segment or query value, percent-encoded.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&…` with the non-empty pairs, encoded.
pub fn url(path: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The link to a page's next page, and how much the page read.
pub fn pager(next: Option<String>, shown: usize, scanned: usize, first: Option<String>) -> Markup {
    html! {
        nav.pager {
            span.muted { (shown) " shown, " (scanned) " entries read" }
            @if let Some(first) = first { a href=(first) { "First page" } }
            @if let Some(next) = next { a rel="next" href=(next) { "Next page" } }
        }
    }
}

/// A small label for a state or status.
pub fn badge(text: &str) -> Markup {
    let class = match text {
        "success" | "present" | "joined" | "projected" | "add" => "badge good",
        "completed-with-warnings"
        | "stopped"
        | "skipped"
        | "provisioned"
        | "update"
        | "rename"
        | "in-progress"
        | "inflight"
        | "added" => "badge warn",
        "completed-with-errors"
        | "stopped-by-threshold"
        | "failed"
        | "interrupted"
        | "delete"
        | "deleted"
        | "error" => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_secrets_redacted() {
        let v = Value::Str("<script>alert(1)</script>".into());
        let shown = value("displayName", &v).into_string();
        assert_eq!(shown, "&lt;script&gt;alert(1)&lt;/script&gt;");
        let secret = value("userPassword", &Value::Str("hunter2".into())).into_string();
        assert!(!secret.contains("hunter2"), "{secret}");
        assert!(secret.contains("redacted"), "{secret}");
    }

    #[test]
    fn urls_encode_their_values() {
        assert_eq!(
            url(
                "/connectors/hr",
                &[("value", Some("a&b <c>")), ("state", None)]
            ),
            "/connectors/hr?value=a%26b%20%3Cc%3E"
        );
    }
}
