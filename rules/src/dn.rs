//! Distinguished names (RFC 4514): the one DN type of mvsync.
//!
//! Every place that stores, indexes, compares or builds a DN goes through
//! this module: the store's DN index and waiting references, sync's rename
//! detection, escrow confirmation, the connectors, and the `EscapeDN`,
//! `ParentDN` and `RDN` functions.
//!
//! Two DNs are equal when they name the same entry the way a directory
//! compares them: attribute types and values case-insensitively, escapes
//! resolved (`\,`, `\2C` and a quoted `"a,b"` are the same comma), spaces
//! around `,`, `+` and `=` ignored, and the attribute-value pairs of a
//! multi-valued RDN in any order. [`Dn::normalized`] is that comparison as a
//! string, used as index key.

use std::fmt;

/// A parsed distinguished name: its RDNs, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    rdns: Vec<Rdn>,
}

/// One relative distinguished name: one or more `type=value` pairs joined by `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    avas: Vec<Ava>,
}

/// One attribute type and value, the value with its escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written (`CN`, `ou`, `2.5.4.3`).
    pub attr: String,
    /// The value, unescaped. A `#hex` (BER) value is kept as written.
    pub value: String,
    /// Whether the value is a `#hex` BER encoding (an unescaped leading
    /// `#`), as opposed to text that begins with an escaped `\#`.
    pub ber: bool,
}

/// Why a string is not a DN, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a distinguished name: {message} at byte {offset} of '{dn}'")]
pub struct DnError {
    /// The text that failed.
    pub dn: String,
    /// Where.
    pub offset: usize,
    /// What was expected.
    pub message: &'static str,
}

impl Dn {
    /// Parses a DN string. The empty string is the empty (root) DN.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        Parser { text, pos: 0 }.dn()
    }

    /// The RDNs, most specific first.
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// Whether this is the empty DN.
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The DN without its first RDN; `None` for a DN of one RDN or none.
    pub fn parent(&self) -> Option<Dn> {
        (self.rdns.len() > 1).then(|| Dn {
            rdns: self.rdns[1..].to_vec(),
        })
    }

    /// The first RDN.
    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// The comparison form: types and values lower-cased, escapes in one
    /// canonical form, no spaces around separators, multi-valued RDNs
    /// sorted. Two DNs are equal exactly when their normalized forms are.
    pub fn normalized(&self) -> String {
        let mut out = String::with_capacity(self.rdns.len() * 16);
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            rdn.push_normalized(&mut out);
        }
        out
    }

    /// Whether `other` is this DN or lies under it.
    pub fn is_under(&self, other: &Dn) -> bool {
        other.rdns.len() <= self.rdns.len()
            && self.rdns[self.rdns.len() - other.rdns.len()..]
                .iter()
                .zip(&other.rdns)
                .all(|(a, b)| a.normalized() == b.normalized())
    }
}

impl Rdn {
    /// The attribute-value pairs.
    pub fn avas(&self) -> &[Ava] {
        &self.avas
    }

    fn normalized(&self) -> String {
        let mut out = String::new();
        self.push_normalized(&mut out);
        out
    }

    /// Appends the comparison form of the RDN (see [`Dn::normalized`]):
    /// its pairs sorted and joined by `+`.
    fn push_normalized(&self, out: &mut String) {
        if let [ava] = self.avas.as_slice() {
            ava.push_normalized(out);
            return;
        }
        let mut avas: Vec<String> = self
            .avas
            .iter()
            .map(|a| {
                let mut s = String::new();
                a.push_normalized(&mut s);
                s
            })
            .collect();
        avas.sort();
        out.push_str(&avas.join("+"));
    }
}

impl Ava {
    /// Appends `type=value`, both lower-cased, the value escaped in the
    /// canonical form (a BER value as written).
    fn push_normalized(&self, out: &mut String) {
        push_lowercase(out, &self.attr);
        out.push('=');
        let start = out.len();
        push_lowercase(out, &self.value);
        if !self.ber && needs_escaping(&out[start..]) {
            let escaped = escape_value(&out[start..]);
            out.truncate(start);
            out.push_str(&escaped);
        }
    }
}

/// Appends `s` lower-cased (as `str::to_lowercase` does), without an
/// allocation when it is ASCII.
fn push_lowercase(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// The canonical text: each value escaped by [`escape_value`], no spaces
/// around separators, types as written.
impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rdn}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            if a.ber {
                write!(f, "{}={}", a.attr, a.value)?;
            } else {
                write!(f, "{}={}", a.attr, escape_value(&a.value))?;
            }
        }
        Ok(())
    }
}

/// The comparison key of a DN string: [`Dn::normalized`] when it parses,
/// else the trimmed, lower-cased text (a connector may hand over a string
/// that is not strictly a DN; it must still index and compare stably).
pub fn normalize(dn: &str) -> String {
    if is_plain(dn) {
        // What parsing and normalizing would give, without either (a
        // provisioned DN is normalized for its look-up and its index key).
        return dn.to_ascii_lowercase();
    }
    match Dn::parse(dn) {
        Ok(parsed) => parsed.normalized(),
        Err(_) => dn.trim().to_lowercase(),
    }
}

/// Whether `dn`'s comparison form is its ASCII lower-casing: printable
/// ASCII, one `=` in each comma-separated RDN, no space next to a
/// separator or at either end, and nothing that is escaped, quoted,
/// multi-valued, a BER value or RFC 1779's `;`. Such a DN either parses
/// to pairs that normalize as written, or does not parse and is trimmed
/// and lower-cased, which is the same.
fn is_plain(dn: &str) -> bool {
    let b = dn.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let spaced = |i: usize| {
        i.checked_sub(1).and_then(|j| b.get(j)) == Some(&b' ') || b.get(i + 1) == Some(&b' ')
    };
    let mut equals = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\\' | b'"' | b'+' | b';' | b'<' | b'>' | b'#' => return false,
            b'=' => {
                equals += 1;
                if spaced(i) {
                    return false;
                }
            }
            b',' => {
                if equals != 1 || spaced(i) {
                    return false;
                }
                equals = 0;
            }
            b' '..=b'~' => {}
            _ => return false,
        }
    }
    equals == 1
}

/// Whether two DN strings name the same entry (see the module header).
pub fn same(a: &str, b: &str) -> bool {
    a == b || normalize(a) == normalize(b)
}

/// A value escaped for use in an RDN (RFC 4514 section 2.4): a backslash
/// before `, + " \ < > ; =`, before a leading `#` or space and a trailing
/// space; NUL as `\00`.
pub fn escape_value(s: &str) -> String {
    if !needs_escaping(s) {
        return s.to_owned();
    }
    let last_start = s.char_indices().next_back().map_or(0, |(i, _)| i);
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.char_indices() {
        if escaped_at(i, c, i == last_start) {
            if c == '\0' {
                out.push_str("\\00");
                continue;
            }
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether [`escape_value`] escapes character `c` at byte `i` (`last`:
/// the last character).
fn escaped_at(i: usize, c: char, last: bool) -> bool {
    match c {
        ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' | '\0' => true,
        '#' => i == 0,
        ' ' => i == 0 || last,
        _ => false,
    }
}

/// Whether [`escape_value`] changes `s`.
fn needs_escaping(s: &str) -> bool {
    let last_start = s.char_indices().next_back().map_or(0, |(i, _)| i);
    s.char_indices()
        .any(|(i, c)| escaped_at(i, c, i == last_start))
}

/// The value of an RDN as written (escapes, hex pairs and quotes) resolved
/// to its characters.
pub fn unescape_value(s: &str) -> Result<String, DnError> {
    let mut p = Parser { text: s, pos: 0 };
    let v = p.value()?;
    if p.pos < s.len() {
        return Err(p.error("an unescaped special character in the value"));
    }
    Ok(v)
}

/// The byte index of the first comma (or semicolon, RFC 1779's separator)
/// that separates RDNs, skipping escaped and quoted ones.
pub fn first_separator(dn: &str) -> Option<usize> {
    let mut escaped = false;
    let mut quoted = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' | ';' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn is_ber(v: &str) -> bool {
    v.len() > 1 && v.len() % 2 == 1 && v[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &'static str) -> DnError {
        DnError {
            dn: self.text.to_owned(),
            offset: self.pos,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn dn(mut self) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        self.skip_spaces();
        if self.pos == self.text.len() {
            return Ok(Dn { rdns });
        }
        loop {
            let mut avas = vec![self.ava()?];
            while self.peek() == Some(b'+') {
                self.pos += 1;
                avas.push(self.ava()?);
            }
            rdns.push(Rdn { avas });
            match self.peek() {
                None => return Ok(Dn { rdns }),
                Some(b',' | b';') => self.pos += 1,
                Some(_) => return Err(self.error("expected ',' or '+' after a value")),
            }
        }
    }

    fn ava(&mut self) -> Result<Ava, DnError> {
        self.skip_spaces();
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(self.error("expected an attribute type"));
        }
        let attr = self.text[start..self.pos].to_owned();
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(self.error("expected '=' after the attribute type"));
        }
        self.pos += 1;
        self.skip_spaces();
        let unescaped_hash = self.peek() == Some(b'#');
        let value = self.value()?;
        self.skip_spaces();
        let ber = unescaped_hash && is_ber(&value);
        Ok(Ava { attr, value, ber })
    }

    /// A value up to the next unescaped separator; trailing unescaped
    /// spaces are dropped, escaped ones kept.
    fn value(&mut self) -> Result<String, DnError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let mut bytes: Vec<u8> = Vec::new();
        let mut keep = 0; // length of `bytes` up to the last significant byte
        while let Some(b) = self.peek() {
            match b {
                b',' | b'+' | b';' => break,
                b'\\' => {
                    self.pos += 1;
                    bytes.push(self.escaped()?);
                    keep = bytes.len();
                }
                b' ' => {
                    bytes.push(b);
                    self.pos += 1;
                }
                _ => {
                    bytes.push(b);
                    keep = bytes.len();
                    self.pos += 1;
                }
            }
        }
        bytes.truncate(keep);
        String::from_utf8(bytes).map_err(|_| self.error("hex escapes that are not UTF-8"))
    }

    fn quoted(&mut self) -> Result<String, DnError> {
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("an unterminated quoted value")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    bytes.push(self.escaped()?);
                }
                Some(b) => {
                    bytes.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error("hex escapes that are not UTF-8"))
    }

    /// After a backslash: a special character, or two hex digits (one byte).
    fn escaped(&mut self) -> Result<u8, DnError> {
        let hex = |b: u8| (b as char).to_digit(16);
        let bytes = self.text.as_bytes();
        match (bytes.get(self.pos), bytes.get(self.pos + 1)) {
            (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                self.pos += 2;
                Ok((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8)
            }
            (Some(&c), _) if c.is_ascii() => {
                self.pos += 1;
                Ok(c)
            }
            (Some(_), _) => {
                // An escaped multi-byte character: keep its first byte here,
                // the rest follow as ordinary bytes.
                let c = bytes[self.pos];
                self.pos += 1;
                Ok(c)
            }
            (None, _) => Err(self.error("a backslash at the end")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping_forms_of_one_dn_are_equal() {
        let forms = [
            "CN=Müller\\, José,OU=Users,DC=corp,DC=example",
            "cn=müller\\2C josé,ou=users,dc=corp,dc=example",
            "CN=\"Müller, José\",OU=Users,DC=corp,DC=example",
            "CN=Müller\\, José, OU=Users, DC=corp, DC=example",
            "CN = Müller\\, José , OU=Users,DC=corp;DC=example",
            "CN=M\\C3\\BCller\\, Jos\\C3\\A9,OU=Users,DC=corp,DC=example",
        ];
        for f in forms {
            assert!(
                same(forms[0], f),
                "{f}: {} vs {}",
                normalize(f),
                normalize(forms[0])
            );
        }
        assert!(!same(
            forms[0],
            "CN=Müller José,OU=Users,DC=corp,DC=example"
        ));
        assert!(
            !same("CN=a,DC=x", "CN=a\\ ,DC=x"),
            "an escaped trailing space counts"
        );
    }

    #[test]
    fn multi_valued_rdns_compare_in_any_order() {
        assert!(same("CN=a+UID=1,DC=x", "uid=1+cn=A,dc=x"));
        assert!(!same("CN=a+UID=1,DC=x", "CN=a,UID=1,DC=x"));
    }

    #[test]
    fn values_unescape_and_escape_back() {
        assert_eq!(unescape_value("a\\,b\\2Cc\\ ").unwrap(), "a,b,c ");
        assert_eq!(escape_value("a,b,c "), "a\\,b\\,c\\ ");
        assert_eq!(escape_value("#1 a+b "), "\\#1 a\\+b\\ ");
        assert_eq!(escape_value("a\0b"), "a\\00b");
        assert_eq!(escape_value("ab é"), "ab é");
        let dn = Dn::parse("CN=\"a,b\"  ,  OU=x\\+y").unwrap();
        assert_eq!(dn.to_string(), "CN=a\\,b,OU=x\\+y");
        assert_eq!(Dn::parse(&dn.to_string()).unwrap(), dn);
    }

    #[test]
    fn parents_rdns_and_containment() {
        let dn = Dn::parse("CN=a\\,b,OU=Users,DC=corp").unwrap();
        assert_eq!(dn.parent().unwrap().to_string(), "OU=Users,DC=corp");
        assert_eq!(dn.rdn().unwrap().to_string(), "CN=a\\,b");
        assert!(dn.is_under(&Dn::parse("ou=users, dc=CORP").unwrap()));
        assert!(!dn.is_under(&Dn::parse("OU=Other,DC=corp").unwrap()));
        assert!(Dn::parse("").unwrap().is_empty());
        assert_eq!(Dn::parse("DC=corp").unwrap().parent(), None);
    }

    #[test]
    fn malformed_dns_say_where() {
        for (text, offset) in [
            ("CN", 2),
            ("=x", 0),
            ("CN=\"open", 8),
            ("CN=a\\", 5),
            ("CN=a,", 5),
        ] {
            let e = Dn::parse(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
        }
        assert_eq!(normalize("  Not A DN "), "not a dn");
        assert!(Dn::parse("CN=\\ff\\fe").is_err());
    }

    #[test]
    fn an_escaped_hash_is_text_not_a_ber_value() {
        assert!(!same("CN=\\#2024,DC=x", "CN=#2024,DC=x"));
        let text = Dn::parse("CN=\\#2024,DC=x").unwrap();
        assert_eq!(text.to_string(), "CN=\\#2024,DC=x");
        assert_eq!(
            normalize(&normalize("CN=\\#2024,DC=x")),
            normalize("CN=\\#2024,DC=x")
        );
        assert!(same(
            &format!("CN={},DC=x", escape_value("#2024")),
            "cn=\\#2024,dc=x"
        ));
    }

    #[test]
    fn ber_values_are_kept_as_written() {
        let dn = Dn::parse("1.3.6.1.4.1.1466.0=#04024869,DC=x").unwrap();
        assert_eq!(dn.to_string(), "1.3.6.1.4.1.1466.0=#04024869,DC=x");
        assert!(same(
            "1.3.6.1.4.1.1466.0=#04024869,DC=x",
            "1.3.6.1.4.1.1466.0=#04024869,dc=X"
        ));
    }

    #[test]
    fn separators_skip_escapes_and_quotes() {
        assert_eq!(first_separator("CN=a\\,b,DC=x"), Some(7));
        assert_eq!(first_separator("CN=a\\2Cb,DC=x"), Some(8));
        assert_eq!(first_separator("CN=\"a,b\",DC=x"), Some(8));
        assert_eq!(first_separator("CN=a\\\\,DC=x"), Some(6));
        assert_eq!(first_separator("CN=é"), None);
    }

    /// The comparison form as it was built before it went into one buffer
    /// (a string per pair, sorted, joined): the oracle of the proptest below.
    fn normalized_by_pairs(dn: &Dn) -> String {
        dn.rdns
            .iter()
            .map(|rdn| {
                let mut avas: Vec<String> = rdn
                    .avas
                    .iter()
                    .map(|a| {
                        let value = if a.ber {
                            a.value.to_lowercase()
                        } else {
                            escape_value(&a.value.to_lowercase())
                        };
                        format!("{}={}", a.attr.to_lowercase(), value)
                    })
                    .collect();
                avas.sort();
                avas.join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn a_plain_dn_is_told_from_one_that_needs_parsing() {
        assert!(is_plain("CN=Ann Lee (E1),OU=Sales,DC=corp,DC=example"));
        for dn in [
            "",
            " CN=a",
            "CN=a ",
            "CN=a ,DC=x",
            "CN= a",
            "CN=a\\,b,DC=x",
            "CN=\"a\"",
            "CN=a+UID=b",
            "CN=a;DC=x",
            "CN=a=b",
            "CN=#04",
            "CN=a,,DC=x",
            "CN=é",
            "CN=a\tb",
        ] {
            assert!(!is_plain(dn), "{dn:?}");
        }
    }

    /// [`normalize`] without its plain path: the oracle of the proptests
    /// below.
    fn by_parsing(dn: &str) -> String {
        match Dn::parse(dn) {
            Ok(parsed) => parsed.normalized(),
            Err(_) => dn.trim().to_lowercase(),
        }
    }

    proptest::proptest! {
        #[test]
        fn the_plain_path_gives_what_parsing_gives(
            dn in "[ a-zA-Z0-9=,+;#\"\\\\<>()é\t]{0,24}"
        ) {
            proptest::prop_assert_eq!(normalize(&dn), by_parsing(&dn));
        }

        #[test]
        fn the_plain_path_gives_what_parsing_gives_for_dn_shaped_text(
            rdns in proptest::collection::vec(
                ("(CN|ou|Dc| cn|o )", "( ?)", "[ a-zA-Z0-9()=,é-]{0,8}"),
                0..4,
            )
        ) {
            let dn = rdns
                .iter()
                .map(|(t, sp, v)| format!("{t}={sp}{v}"))
                .collect::<Vec<_>>()
                .join(",");
            proptest::prop_assert_eq!(normalize(&dn), by_parsing(&dn));
        }

        #[test]
        fn the_comparison_form_is_what_it_was_for_any_dn(
            rdns in proptest::collection::vec(
                proptest::collection::vec(
                    ("(CN|ou|Dc|2\\.5\\.4\\.3)", "[ a-zA-Z#,+=\"\\\\<>;éÉΣσς\u{0}]{0,8}", proptest::bool::ANY),
                    1..3,
                ),
                0..4,
            )
        ) {
            let dn = Dn {
                rdns: rdns
                    .into_iter()
                    .map(|avas| Rdn {
                        avas: avas
                            .into_iter()
                            .map(|(attr, value, ber)| Ava { attr, value, ber })
                            .collect(),
                    })
                    .collect(),
            };
            proptest::prop_assert_eq!(dn.normalized(), normalized_by_pairs(&dn));
        }
    }
}
