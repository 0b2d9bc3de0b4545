//! Entries as the engine sees them, and values as the directory takes
//! them: the object type from objectClass, the anchor (a GUID in its text
//! form, or a plain attribute), bytes for binary attributes, integers where
//! declared, DN-valued attributes as DN strings (references), attribute
//! names in the configuration's case, and ranged values (`member;range=…`)
//! read to their end.

use engine::{ImportedObject, ItemError};
use ldap3::{Ldap, ResultEntry, Scope, SearchEntry};
use rules::Value;

use super::config::{is_listed, Flavor, LdapConfig, ObjectType};

/// Active Directory's PASSWD_NOTREQD bit of `userAccountControl`, which the
/// directory sets on its own (an account added without a password): it is
/// the directory's, never compared or written by mvsync.
pub(crate) const PASSWD_NOTREQD: i64 = 0x20;

/// An entry's values by attribute name, text and binary merged, the name
/// as the server returned it (ldap3 puts an attribute with any value that
/// is not UTF-8 in its binary map, and the others in its text map).
pub(crate) struct RawEntry {
    pub(crate) dn: String,
    pub(crate) values: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// Parses a search result entry; ldap3's parser panics on malformed
    /// BER, which is caught here and becomes an error naming it.
    pub(crate) fn parse(found: ResultEntry) -> Result<RawEntry, String> {
        parsed(|| SearchEntry::construct(found))
            .map(RawEntry::from)
            .ok_or_else(|| "a malformed search result entry".to_owned())
    }

    /// Merges ldap3's text and binary maps.
    fn from(entry: SearchEntry) -> RawEntry {
        let mut values: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut push = |name: String, v: Vec<u8>| match values
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some((_, vs)) => vs.push(v),
            None => values.push((name, vec![v])),
        };
        for (name, vs) in entry.attrs {
            for v in vs {
                push(name.clone(), v.into_bytes());
            }
        }
        for (name, vs) in entry.bin_attrs {
            for v in vs {
                push(name.clone(), v);
            }
        }
        RawEntry {
            dn: entry.dn,
            values,
        }
    }

    /// The values of `name` (case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&[Vec<u8>]> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let v = self.get(name)?.first()?;
        Some(String::from_utf8_lossy(v).into_owned())
    }

    /// Reads the rest of every ranged attribute (`member;range=0-1499`),
    /// asking the server for the next range until it answers `*`. `false`
    /// when the entry is gone (deleted while the import ran). A server
    /// that answers a range other than the one asked for is an error, not
    /// a loop.
    pub(crate) async fn complete_ranges(
        &mut self,
        settings: &super::Settings,
        ldap: &mut Ldap,
    ) -> Result<bool, ldap3::LdapError> {
        loop {
            let Some(i) = self.values.iter().position(|(n, _)| range_of(n).is_some()) else {
                return Ok(true);
            };
            let (name, values) = self.values.swap_remove(i);
            let Some((base, _, end)) = range_of(&name) else {
                continue;
            };
            let mut all = values;
            let mut next = end;
            while let Some(from) = next {
                let wanted = format!("{base};range={from}-*");
                let found = settings
                    .op(ldap)
                    .search(
                        &self.dn,
                        Scope::Base,
                        "(objectClass=*)",
                        vec![wanted.as_str()],
                    )
                    .await?
                    .success();
                let entries = match found {
                    Ok((entries, _)) => entries,
                    Err(ldap3::LdapError::LdapResult { result }) if result.rc == 32 => {
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                };
                next = None;
                let Some(found) = entries.into_iter().next() else {
                    return Ok(false);
                };
                let more = RawEntry::parse(found).map_err(ldap3::LdapError::AdapterInit)?;
                for (n, vs) in more.values {
                    if let Some((b, lo, e)) = range_of(&n) {
                        if b.eq_ignore_ascii_case(&base) {
                            if lo != from {
                                return Err(ldap3::LdapError::AdapterInit(format!(
                                    "asked for {base} from value {from}, the server answered from {lo}"
                                )));
                            }
                            all.extend(vs);
                            next = e;
                        }
                    }
                }
            }
            match self
                .values
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&base))
            {
                Some((_, vs)) => vs.extend(all),
                None => self.values.push((base, all)),
            }
        }
    }
}

/// `member;range=0-1499` → (`member`, 0, Some(1500)); `member;range=1500-*`
/// → (`member`, 1500, None).
fn range_of(name: &str) -> Option<(String, u64, Option<u64>)> {
    let (base, options) = name.split_once(';')?;
    let range = options.split(';').find_map(|o| {
        o.strip_prefix("range=")
            .or_else(|| o.strip_prefix("Range="))
    })?;
    let (lo, hi) = range.split_once('-')?;
    let lo = lo.parse::<u64>().ok()?;
    let next = if hi == "*" {
        None
    } else {
        let hi = hi.parse::<u64>().ok()?;
        if hi < lo {
            return None;
        }
        Some(hi + 1)
    };
    Some((base.to_owned(), lo, next))
}

/// Runs a parser of server data that panics on malformed input (ldap3's
/// entry and control parsers); `None` when it did.
pub(crate) fn parsed<T>(parse: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).ok()
}

/// The object type of an entry: of the types whose objectClass it has,
/// the most specific, the one whose class comes last in the entry's
/// objectClass values (a directory lists them from `top` down: an AD
/// computer is `…, user, computer`).
pub(crate) fn object_type<'a>(
    config: &'a LdapConfig,
    entry: &RawEntry,
) -> Option<(&'a String, &'a ObjectType)> {
    let classes: Vec<String> = entry
        .get("objectClass")
        .unwrap_or_default()
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
        .collect();
    config
        .object_types
        .iter()
        .filter_map(|(name, t)| {
            let class = t.object_class.to_ascii_lowercase();
            classes
                .iter()
                .rposition(|c| *c == class)
                .map(|at| (at, name, t))
        })
        .max_by_key(|(at, _, _)| *at)
        .map(|(_, name, t)| (name, t))
}

/// An anchor value as text: a GUID in its usual form, anything else as is.
pub(crate) fn anchor_text(config: &LdapConfig, value: &[u8]) -> Option<String> {
    if config.binary_anchor() {
        guid_text(value)
    } else {
        String::from_utf8(value.to_vec()).ok()
    }
}

/// The anchor of an entry.
pub(crate) fn anchor(config: &LdapConfig, entry: &RawEntry) -> Result<String, ItemError> {
    let name = config.anchor_attribute();
    let value = entry
        .get(name)
        .and_then(|v| v.first())
        .ok_or_else(|| ItemError {
            location: entry.dn.clone(),
            message: format!("the entry has no `{name}`, the anchor attribute"),
        })?;
    anchor_text(config, value).ok_or_else(|| ItemError {
        location: entry.dn.clone(),
        message: format!("its `{name}` is not a GUID (16 bytes) as the anchor must be"),
    })
}

/// An entry as an imported object; `None` when it is of no configured type.
pub(crate) fn to_object(
    config: &LdapConfig,
    entry: &RawEntry,
) -> Result<Option<ImportedObject>, ItemError> {
    let Some((type_name, ty)) = object_type(config, entry) else {
        return Ok(None);
    };
    let anchor = anchor(config, entry)?;
    let mut attributes = Vec::with_capacity(entry.values.len());
    for (returned, values) in &entry.values {
        // Attribute names in the configuration's case.
        let name = ty
            .attributes
            .iter()
            .find(|a| a.eq_ignore_ascii_case(returned))
            .cloned();
        let name = match name {
            Some(n) => n,
            None if returned.eq_ignore_ascii_case(config.anchor_attribute()) => {
                config.anchor_attribute().to_owned()
            }
            None if ty.attributes.is_empty() => returned.clone(),
            // objectClass, read to type the entry but not configured.
            None => continue,
        };
        let value = to_value(config, ty, &name, values).map_err(|message| ItemError {
            location: format!("{} ({name})", entry.dn),
            message,
        })?;
        attributes.push((name, value));
    }
    Ok(Some(ImportedObject {
        anchor,
        object_type: type_name.clone(),
        dn: Some(entry.dn.clone()),
        attributes,
    }))
}

/// The values of one attribute as a value.
fn to_value(
    config: &LdapConfig,
    ty: &ObjectType,
    name: &str,
    raw: &[Vec<u8>],
) -> Result<Value, String> {
    let binary = config.is_binary(ty, name);
    let integer = config.is_integer(ty, name);
    let uac =
        config.flavor == Flavor::ActiveDirectory && name.eq_ignore_ascii_case("userAccountControl");
    let mut values = Vec::with_capacity(raw.len());
    for v in raw {
        let value = if binary {
            Value::Bytes(v.clone())
        } else {
            // A value that is not text (an attribute read with `*` that
            // holds bytes: logonHours, thumbnailPhoto) is bytes.
            let Ok(text) = String::from_utf8(v.clone()) else {
                values.push(Value::Bytes(v.clone()));
                continue;
            };
            if integer {
                match text.trim().parse::<i64>() {
                    Ok(n) if uac => Value::Int(n & !PASSWD_NOTREQD),
                    Ok(n) => Value::Int(n),
                    Err(_) => return Err(format!("`{text}` is not an integer")),
                }
            } else {
                Value::Str(text)
            }
        };
        values.push(value);
    }
    Ok(if values.len() == 1 && !is_listed(&ty.multi_valued, name) {
        values.pop().unwrap_or_default()
    } else {
        Value::list(values)
    })
}

/// A value as the directory takes it: text, or bytes for binary values.
pub(crate) fn to_bytes(value: &Value) -> Vec<Vec<u8>> {
    value
        .items()
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::Bytes(b) => b.clone(),
            Value::Bool(true) => b"TRUE".to_vec(),
            Value::Bool(false) => b"FALSE".to_vec(),
            Value::DateTime(micros) => generalized_time(*micros).into_bytes(),
            other => other.to_string().into_bytes(),
        })
        .collect()
}

/// An instant as LDAP's GeneralizedTime (`20260301120000.0Z`).
fn generalized_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y%m%d%H%M%S.0Z").to_string())
        .unwrap_or_default()
}

/// A GUID's text form as Windows writes it: the first three fields
/// little-endian (`objectGUID` is stored that way).
pub(crate) fn guid_text(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// A GUID's bytes as `objectGUID` stores them, from its text form; for a
/// filter on the anchor.
pub(crate) fn guid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    Some(b)
}

/// A UUID's text form (RFC 4122, big-endian: `entryUUID`, the sync state
/// control's UUIDs).
pub(crate) fn uuid_text(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The attributes to request for the configured types.
pub(crate) fn requested(config: &LdapConfig) -> Vec<String> {
    let mut attrs: Vec<String> = vec!["objectClass".into(), config.anchor_attribute().into()];
    let mut everything = false;
    for ty in config.object_types.values() {
        if ty.attributes.is_empty() {
            everything = true;
        }
        for a in &ty.attributes {
            if !is_listed(&attrs, a) {
                attrs.push(a.clone());
            }
        }
    }
    if everything {
        attrs.push("*".into());
    }
    attrs
}

/// A filter matching the configured object classes, each escaped.
pub(crate) fn classes_filter(config: &LdapConfig) -> String {
    let classes: String = config
        .object_types
        .values()
        .map(|t| {
            format!(
                "(objectClass={})",
                ldap3::ldap_escape(t.object_class.as_str())
            )
        })
        .collect();
    if config.object_types.len() == 1 {
        classes
    } else {
        format!("(|{classes})")
    }
}

/// A filter that matches the entry with this anchor (its bytes or text
/// escaped, as every value placed in a filter is).
pub(crate) fn anchor_filter(config: &LdapConfig, anchor: &str) -> Option<String> {
    let name = config.anchor_attribute();
    if config.binary_anchor() {
        let bytes = guid_bytes(anchor)?;
        let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
        Some(format!("({name}={escaped})"))
    } else {
        Some(format!("({name}={})", ldap3::ldap_escape(anchor)))
    }
}

/// The filter of an import: the configured filter, and one of the
/// configured object classes.
pub(crate) fn scope_filter(config: &LdapConfig) -> String {
    let classes = classes_filter(config);
    match &config.filter {
        Some(f) => format!("(&{}{classes})", parenthesised(f)),
        None => classes,
    }
}

/// A filter in parentheses (RFC 4515 allows the outer ones to be left out
/// in configuration).
fn parenthesised(f: &str) -> String {
    let f = f.trim();
    if f.starts_with('(') {
        f.to_owned()
    } else {
        format!("({f})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_round_trips_through_the_stored_byte_order() {
        let bytes: Vec<u8> = (1..=16).collect();
        let text = guid_text(&bytes).unwrap();
        assert_eq!(text, "04030201-0605-0807-090a-0b0c0d0e0f10");
        assert_eq!(guid_bytes(&text).unwrap().to_vec(), bytes);
        assert_eq!(
            uuid_text(&bytes).unwrap(),
            "01020304-0506-0708-090a-0b0c0d0e0f10"
        );
    }

    #[test]
    fn the_most_specific_configured_class_types_an_entry() {
        let config: LdapConfig = toml::from_str(
            r#"
            flavor = "active-directory"
            url = "ldaps://127.0.0.1"
            base_dns = ["dc=corp"]
            [object_types.user]
            object_class = "user"
            [object_types.workstation]
            object_class = "computer"
            "#,
        )
        .unwrap();
        let entry = |classes: &[&str]| RawEntry {
            dn: "cn=x,dc=corp".into(),
            values: vec![(
                "objectClass".into(),
                classes.iter().map(|c| c.as_bytes().to_vec()).collect(),
            )],
        };
        let typed =
            |classes: &[&str]| object_type(&config, &entry(classes)).map(|(n, _)| n.clone());
        assert_eq!(
            typed(&["top", "person", "organizationalPerson", "user", "computer"]),
            Some("workstation".into())
        );
        assert_eq!(
            typed(&["top", "person", "organizationalPerson", "user"]),
            Some("user".into())
        );
        assert_eq!(typed(&["top", "group"]), None);
    }

    #[test]
    fn ranged_attribute_names_give_the_next_range() {
        assert_eq!(
            range_of("member;range=0-1499"),
            Some(("member".into(), 0, Some(1500)))
        );
        assert_eq!(
            range_of("member;range=1500-*"),
            Some(("member".into(), 1500, None))
        );
        assert_eq!(range_of("member;range=9-3"), None);
        assert_eq!(range_of("member"), None);
        assert_eq!(range_of("member;binary"), None);
    }

    #[test]
    fn filter_values_are_escaped() {
        let config: LdapConfig = toml::from_str(
            r#"
            url = "ldaps://127.0.0.1"
            base_dns = ["dc=example,dc=org"]
            filter = "department=R&D"
            [object_types.person]
            object_class = "inet*Person)(x"
            "#,
        )
        .unwrap();
        assert_eq!(
            scope_filter(&config),
            "(&(department=R&D)(objectClass=inet\\2aPerson\\29\\28x))"
        );
        assert_eq!(
            anchor_filter(&config, "a*b(c)\\").unwrap(),
            "(entryUUID=a\\2ab\\28c\\29\\5c)"
        );
    }
}
