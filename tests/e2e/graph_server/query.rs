//! The OData query options this server understands: `$select`, `$filter`
//! (`eq` on a few string properties) and `$top`.

use super::reply::ApiError;
use super::state::{Directory, Kind, Object};
use serde_json::{Map, Value};

/// A parsed query string.
#[derive(Debug, Default, Clone)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=b&c=d` (percent-decoded; `+` is a space).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// The first value of an option.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The properties a request selected (`$select`), or the defaults.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub names: Vec<String>,
    /// Whether the request had `$select` (the context URL then lists them).
    pub explicit: bool,
}

impl Selection {
    /// `$select`'s list checked against the properties `kind` has; without
    /// one, the default properties.
    pub fn parse(dir: &Directory, kind: Kind, raw: Option<&str>) -> Result<Selection, ApiError> {
        let Some(raw) = raw else {
            return Ok(Selection {
                names: kind.defaults(),
                explicit: false,
            });
        };
        let mut names: Vec<String> = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !dir.known_property(kind, name) {
                return Err(ApiError::bad_request(
                    "Request_BadRequest",
                    format!(
                        "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{}'.",
                        kind.type_name()
                    ),
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        Ok(Selection {
            names,
            explicit: true,
        })
    }

    /// Whether `name` is selected.
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The `@odata.context` of a collection: `…/$metadata#users(a,b)`.
    pub fn context(&self, kind: Kind) -> String {
        let mut context = format!(
            "https://graph.microsoft.com/v1.0/$metadata#{}",
            kind.collection()
        );
        if self.explicit {
            context.push_str(&format!("({})", self.names.join(",")));
        }
        context
    }

    /// `?$select=a,b` to repeat this selection in a URL, or nothing.
    pub fn query(&self) -> String {
        if self.explicit {
            format!("?$select={}", self.names.join(","))
        } else {
            String::new()
        }
    }

    /// The selected properties of `o` as a plain GET returns them (null
    /// when unset; `id` only when selected or by default; navigation
    /// properties never).
    pub fn project(&self, o: &Object) -> Map<String, Value> {
        self.names
            .iter()
            .filter(|n| *n != "manager" && *n != "members")
            .map(|n| (n.clone(), o.value(n)))
            .collect()
    }
}

/// The properties `$filter` may compare.
const FILTERABLE: &[&str] = &[
    "userPrincipalName",
    "mailNickname",
    "displayName",
    "employeeId",
];

/// `$filter=<property> eq '<value>'`.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub property: String,
    pub value: String,
}

impl Filter {
    /// Parses the one form supported, with `''` for a quote inside the value.
    pub fn parse(kind: Kind, raw: &str) -> Result<Filter, ApiError> {
        let syntax = || {
            ApiError::bad_request(
                "BadRequest",
                format!("Invalid filter clause: syntax error in '{raw}'."),
            )
        };
        let text = raw.trim();
        let (property, rest) = text.split_once(char::is_whitespace).ok_or_else(syntax)?;
        let rest = rest.trim_start();
        let (op, rest) = rest.split_once(char::is_whitespace).ok_or_else(syntax)?;
        let literal = rest.trim();
        let inner = literal
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
            .ok_or_else(syntax)?;
        // Inside the quotes every quote must be doubled.
        let mut value = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\'' && chars.next() != Some('\'') {
                return Err(syntax());
            }
            value.push(c);
        }
        if !op.eq_ignore_ascii_case("eq") || !FILTERABLE.contains(&property) {
            return Err(ApiError::bad_request(
                "Request_UnsupportedQuery",
                format!(
                    "Unsupported or invalid query filter clause specified for property '{property}' of resource '{}'.",
                    kind.resource()
                ),
            ));
        }
        Ok(Filter {
            property: property.to_owned(),
            value,
        })
    }

    /// Whether `o` matches (directory strings compare case-insensitively).
    pub fn matches(&self, o: &Object) -> bool {
        o.value(&self.property)
            .as_str()
            .is_some_and(|v| v.to_lowercase() == self.value.to_lowercase())
    }
}

/// `$top`: 1 to 999.
pub(super) fn top(raw: Option<&str>) -> Result<Option<usize>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "Request_BadRequest",
            format!("Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."),
        )
    };
    let n: usize = raw.trim().parse().map_err(|_| invalid())?;
    if (1..=999).contains(&n) {
        Ok(Some(n))
    } else {
        Err(invalid())
    }
}
