//! String functions: Join, case, trimming, slicing by characters, Replace,
//! NormalizeDiacritics, StripSpaces, Split, Contains, StartsWith, EndsWith,
//! Word, Append, Truncate.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::util::{count_arg, int_arg, keep_first_chars, map_text, text};
use super::{Args, FnError, FunctionDef, PrepareError, Prepared};
use crate::expr::ops;
use crate::{Env, Value, ValueType};

pub(super) const JOIN: FunctionDef = FunctionDef {
    name: "Join",
    returns: Some(ValueType::String),
    signature: "Join(separator, value1, value2, ...)",
    min_args: 2,
    max_args: None,
    pairs: false,
    summary: "The values joined by the separator, skipping null and empty ones. Multi-valued \
              arguments contribute each of their items. Null when nothing is left to join. \
              Entra Connect's form, a multi-valued attribute first and then the delimiter \
              (`Join([proxyAddresses], \",\")`), is recognised by its two arguments: an \
              expression first and a literal delimiter second.",
    examples: &[
        ("Join(\" \", givenName, sn)", "José Müller"),
        (
            "Join(\",\", \"CN=x\", null, \"\", \"DC=corp\")",
            "CN=x,DC=corp",
        ),
        (
            "Join(\"|\", proxyAddresses)",
            "SMTP:jose.muller@contoso.com|smtp:jm@contoso.com",
        ),
        ("Join(\"-\", employeeId, 7)", "00042-7"),
        ("Join(\",\", missing, \"\")", "null"),
        (
            "Join(proxyAddresses, \",\")",
            "SMTP:jose.muller@contoso.com,smtp:jm@contoso.com",
        ),
    ],
    eval: join,
    prepare: Some(prepare_join),
};

/// Entra Connect's `Join(attribute, "delimiter")`: two arguments, an
/// expression first and a literal delimiter second (decided when parsed,
/// so a null or single value does not change the meaning).
struct ConnectJoin;

fn prepare_join(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    Ok(match constants {
        [None, Some(_)] => Prepared::new(ConnectJoin),
        _ => Prepared::none(),
    })
}

fn join(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    // Entra Connect's form, `Join(multiValued, "delimiter")` (decided when
    // parsed).
    if args.prepared::<ConnectJoin>().is_some() {
        let separator = text(args.get(1)).into_owned();
        let items: Vec<String> = args
            .get(0)
            .items()
            .iter()
            .map(|v| text(v).into_owned())
            .collect();
        return Ok(if items.is_empty() {
            Value::Null
        } else {
            Value::Str(items.join(&separator))
        });
    }
    let separator = text(args.get(0));
    let mut out = String::new();
    let mut first = true;
    for value in args.iter().skip(1) {
        for item in value.items() {
            let item = text(item);
            if item.is_empty() {
                continue;
            }
            if !first {
                out.push_str(&separator);
            }
            out.push_str(&item);
            first = false;
        }
    }
    Ok(if first { Value::Null } else { Value::Str(out) })
}

pub(super) const LOWER: FunctionDef = FunctionDef {
    name: "Lower",
    returns: Some(ValueType::String),
    signature: "Lower(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value in lower case (Unicode rules). Elementwise; null stays null.",
    examples: &[
        ("Lower(\"José MÜLLER\")", "josé müller"),
        (
            "Lower(proxyAddresses)",
            "smtp:jose.muller@contoso.com; smtp:jm@contoso.com",
        ),
        ("Lower(missing)", "null"),
    ],
    eval: lower,
    prepare: None,
};

fn lower(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |mut s| {
        if s.is_ascii() {
            s.make_ascii_lowercase();
            Ok(Value::Str(s))
        } else {
            Ok(Value::Str(s.to_lowercase()))
        }
    })
}

pub(super) const UPPER: FunctionDef = FunctionDef {
    name: "Upper",
    returns: Some(ValueType::String),
    signature: "Upper(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value in upper case (Unicode rules: ß becomes SS). Elementwise; null stays null.",
    examples: &[
        ("Upper(sn)", "MÜLLER"),
        ("Upper(\"straße\")", "STRASSE"),
        ("Upper(missing)", "null"),
    ],
    eval: upper,
    prepare: None,
};

fn upper(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |mut s| {
        if s.is_ascii() {
            s.make_ascii_uppercase();
            Ok(Value::Str(s))
        } else {
            Ok(Value::Str(s.to_uppercase()))
        }
    })
}

pub(super) const TRIM: FunctionDef = FunctionDef {
    name: "Trim",
    returns: Some(ValueType::String),
    signature: "Trim(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value without leading and trailing whitespace (Unicode whitespace, including \
              no-break spaces). Elementwise; null stays null; all-blank gives \"\".",
    examples: &[
        ("Trim(\"  Jo Ann \\t\")", "Jo Ann"),
        ("Trim(\"\u{a0}x\u{a0}\")", "x"),
        ("IsPresent(Trim(\"   \"))", "false"),
        ("Trim(missing)", "null"),
    ],
    eval: trim,
    prepare: None,
};

fn trim(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| {
        let trimmed = s.trim();
        Ok(Value::Str(if trimmed.len() == s.len() {
            s
        } else {
            trimmed.to_owned()
        }))
    })
}

pub(super) const LEFT: FunctionDef = FunctionDef {
    name: "Left",
    returns: Some(ValueType::String),
    signature: "Left(value, count)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The first `count` characters of the value (all of it when shorter). Never splits \
              a character. Elementwise; null stays null; a negative count is an error.",
    examples: &[
        ("Left(givenName, 1)", "J"),
        ("Left(\"日本語\", 2)", "日本"),
        ("Left(\"Zoë\", 10)", "Zoë"),
        ("Left(missing, 3)", "null"),
        (
            "Left(\"abc\", -1)",
            "error: Left: count must not be negative, found -1",
        ),
    ],
    eval: left,
    prepare: None,
};

fn left(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = count_arg(args.get(1), "Left", "count")?;
    map_text(args.take(0), |s| Ok(Value::Str(keep_first_chars(s, n))))
}

pub(super) const TRUNCATE: FunctionDef = FunctionDef {
    name: "Truncate",
    returns: Some(ValueType::String),
    signature: "Truncate(value, maxLength)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The value cut to at most `maxLength` characters, never splitting a character \
              (for attributes with a length limit, such as sAMAccountName's 20). Elementwise; \
              null stays null.",
    examples: &[
        ("Truncate(\"Müller-Lüdenscheidt\", 8)", "Müller-L"),
        ("Truncate(sn, 64)", "Müller"),
        ("Truncate(missing, 5)", "null"),
    ],
    eval: truncate,
    prepare: None,
};

fn truncate(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = count_arg(args.get(1), "Truncate", "maxLength")?;
    map_text(args.take(0), |s| Ok(Value::Str(keep_first_chars(s, n))))
}

pub(super) const RIGHT: FunctionDef = FunctionDef {
    name: "Right",
    returns: Some(ValueType::String),
    signature: "Right(value, count)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The last `count` characters of the value (all of it when shorter). Elementwise; \
              null stays null; a negative count is an error.",
    examples: &[
        ("Right(employeeId, 2)", "42"),
        ("Right(\"Zoë\", 1)", "ë"),
        ("Right(\"ab\", 5)", "ab"),
        ("Right(missing, 1)", "null"),
    ],
    eval: right,
    prepare: None,
};

fn right(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = count_arg(args.get(1), "Right", "count")?;
    map_text(args.take(0), |s| {
        if n == 0 {
            return Ok(Value::Str(String::new()));
        }
        Ok(Value::Str(match s.char_indices().rev().nth(n - 1) {
            Some((start, _)) if start > 0 => s[start..].to_owned(),
            _ => s,
        }))
    })
}

pub(super) const MID: FunctionDef = FunctionDef {
    name: "Mid",
    returns: Some(ValueType::String),
    signature: "Mid(value, start, [length])",
    min_args: 2,
    max_args: Some(3),
    pairs: false,
    summary: "`length` characters of the value from the 1-based position `start` (fewer at the \
              end of the value; \"\" past it); without `length`, the rest of the value (as \
              VBScript's Mid). Elementwise; null stays null; a start below 1 or a negative length \
              is an error.",
    examples: &[
        ("Mid(\"Müller\", 2, 3)", "üll"),
        ("Mid(employeeId, 3, 10)", "042"),
        ("Mid(\"abc\", 5, 2)", ""),
        ("Mid(\"SMTP:a@b\", 6)", "a@b"),
        (
            "Mid(\"abc\", 0, 2)",
            "error: Mid: start is 1-based and must be at least 1, found 0",
        ),
    ],
    eval: mid,
    prepare: None,
};

fn mid(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let start = int_arg(args.get(1), "Mid", "start")?;
    if start < 1 {
        return Err(FnError::bad_argument(format!(
            "Mid: start is 1-based and must be at least 1, found {start}"
        )));
    }
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    let len = match args.get(2) {
        Value::Null if args.len() == 2 => usize::MAX,
        v => count_arg(v, "Mid", "length")?,
    };
    map_text(args.take(0), |s| {
        let Some((from, _)) = s.char_indices().nth(skip) else {
            return Ok(Value::Str(String::new()));
        };
        let rest = &s[from..];
        let to = rest.char_indices().nth(len).map_or(rest.len(), |(i, _)| i);
        Ok(Value::Str(rest[..to].to_owned()))
    })
}

pub(super) const REPLACE: FunctionDef = FunctionDef {
    name: "Replace",
    returns: Some(ValueType::String),
    signature: "Replace(value, find, replacement) | Replace(source, oldValue, regexPattern, \
                regexGroupName, replacementValue, replacementAttributeName, template)",
    min_args: 3,
    max_args: Some(7),
    pairs: false,
    summary: "With three arguments: the value with every occurrence of `find` replaced \
              (case-sensitive, literal text); an empty `find` changes nothing; a null replacement \
              removes. With four to seven (Entra's form; leave unused slots empty), the arguments \
              given choose the mode: `oldValue` and `replacementValue` replace the old value in \
              the source; `oldValue` and `template` put the source into the template in place of \
              the old value; `regexPattern` and `replacementValue` replace every match (the \
              replacement may use `${group}`); `regexPattern`, `regexGroupName` and \
              `replacementValue` replace what the named group matched; `regexPattern`, \
              `regexGroupName` and `replacementAttributeName` give the source when it has a \
              value, else the group's match in that attribute's value. Elementwise; a null \
              source stays null (except in the last mode).",
    examples: &[
        ("Replace(displayName, \", \", \" \")", "Müller José"),
        (
            "Replace(proxyAddresses, \"contoso\", \"fabrikam\")",
            "SMTP:jose.muller@fabrikam.com; smtp:jm@fabrikam.com",
        ),
        ("Replace(\"a-b-c\", \"-\", null)", "abc"),
        ("Replace(missing, \"a\", \"b\")", "null"),
        ("Replace([mail], \"@contoso.com\", , ,\"\", ,)", "jose.muller"),
        ("Replace(sn, \"NAME\", , , , , \"CN=NAME,OU=Users\")", "CN=Müller,OU=Users"),
        ("Replace(employeeId, , \"^0+\", , \"\", , )", "42"),
        (
            "Replace(\"+1 425-555-0100\", , \"^\\\\+(?<isd>\\\\d+) (?<rest>.*)$\", , \"(${isd}) ${rest}\", , )",
            "(1) 425-555-0100",
        ),
        (
            "Replace(\"A123-B456\", , \"[A-Z](?<digits>\\\\d+)\", \"digits\", \"#\", , )",
            "A#-B#",
        ),
        (
            "Replace(missing, , \"^(?<user>[^@]+)@\", \"user\", , mail, )",
            "jose.muller",
        ),
        (
            "Replace(\"x\", \"a\", , , , , )",
            "error: Replace: the arguments given match none of its modes (oldValue with replacementValue or template; regexPattern with replacementValue, or with regexGroupName and replacementValue or replacementAttributeName)",
        ),
    ],
    eval: replace,
    prepare: Some(prepare_replace),
};

/// A literal regexPattern (argument 2 of the long form) is compiled at
/// parse time.
/// The long form's mode is fixed by which slots are written (an empty
/// slot or `null` is not given; an attribute is, even when its value is
/// null for some object), and a literal pattern is compiled once.
struct LongForm {
    given: [bool; 7],
    regex: Option<regex::Regex>,
}

fn prepare_replace(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    if constants.len() <= 3 {
        return Ok(Prepared::none());
    }
    let mut given = [false; 7];
    for (i, c) in constants.iter().enumerate().take(7) {
        given[i] = !matches!(c, Some(Value::Null));
    }
    let regex = match constants.get(2).copied().flatten() {
        Some(Value::Null) | None => None,
        Some(pattern) => {
            Some(
                super::pattern::compile(&text(pattern)).map_err(|message| PrepareError {
                    arg: Some(2),
                    code: "bad-regex",
                    message,
                })?,
            )
        }
    };
    Ok(Prepared::new(LongForm { given, regex }))
}

fn replace(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    if args.len() > 3 {
        return replace_entra(args);
    }
    let value = args.take(0);
    let find = text(args.get(1));
    let replacement = text(args.get(2));
    map_text(value, |s| {
        if find.is_empty() || !s.contains(&*find) {
            Ok(Value::Str(s))
        } else {
            Ok(Value::Str(s.replace(&*find, &replacement)))
        }
    })
}

/// Entra's seven-argument Replace: the arguments given choose the mode.
fn replace_entra(args: &mut Args<'_, '_>) -> Result<Value, FnError> {
    let form = args.prepared::<LongForm>();
    let given = |i: usize| match form {
        Some(f) => f.given[i],
        None => !args.get(i).is_null(),
    };
    let (old, pattern, group, replacement, attribute, template) =
        (given(1), given(2), given(3), given(4), given(5), given(6));
    let regex = |args: &Args<'_, '_>| -> Result<regex::Regex, FnError> {
        match args.prepared::<LongForm>().and_then(|f| f.regex.as_ref()) {
            Some(r) => Ok(r.clone()),
            None => super::pattern::cached(&text(args.get(2)), "Replace"),
        }
    };
    if old && replacement {
        let find = text(args.get(1)).into_owned();
        let with = text(args.get(4)).into_owned();
        return map_text(args.take(0), |s| {
            Ok(Value::Str(if find.is_empty() {
                s
            } else {
                s.replace(&find, &with)
            }))
        });
    }
    if old && template {
        let find = text(args.get(1)).into_owned();
        let template = text(args.get(6)).into_owned();
        return map_text(args.take(0), |s| {
            Ok(Value::Str(template.replace(&find, &s)))
        });
    }
    if pattern && group && replacement {
        let regex = regex(args)?;
        let group = text(args.get(3)).into_owned();
        let with = text(args.get(4)).into_owned();
        return map_text(args.take(0), |s| {
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for caps in regex.captures_iter(&s) {
                if let Some(m) = caps.name(&group) {
                    out.push_str(&s[last..m.start()]);
                    out.push_str(&with);
                    last = m.end();
                }
            }
            out.push_str(&s[last..]);
            Ok(Value::Str(out))
        });
    }
    if pattern && group && attribute {
        let source = args.take(0);
        if !source.is_null() && !text(&source).is_empty() {
            return Ok(source);
        }
        let regex = regex(args)?;
        let group = text(args.get(3)).into_owned();
        return map_text(args.take(5), |s| {
            Ok(regex
                .captures(&s)
                .and_then(|c| c.name(&group))
                .map_or(Value::Null, |m| Value::str(m.as_str())))
        });
    }
    if pattern && replacement {
        let regex = regex(args)?;
        let with = text(args.get(4)).into_owned();
        return map_text(args.take(0), |s| {
            Ok(Value::Str(
                regex.replace_all(&s, with.as_str()).into_owned(),
            ))
        });
    }
    Err(FnError::bad_argument(
        "Replace: the arguments given match none of its modes (oldValue with replacementValue or template; regexPattern with replacementValue, or with regexGroupName and replacementValue or replacementAttributeName)",
    ))
}

pub(super) const NORMALIZE_DIACRITICS: FunctionDef = FunctionDef {
    name: "NormalizeDiacritics",
    returns: Some(ValueType::String),
    signature: "NormalizeDiacritics(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value with accents removed, for account names: compatibility decomposition \
              (NFKD), combining marks dropped, then letters that do not decompose are spelled \
              out: ł→l ø→o đ→d ħ→h ŧ→t ß→ss æ→ae œ→oe þ→th ð→d ı→i (and capitals). Other \
              characters are kept. Elementwise; null stays null.",
    examples: &[
        ("NormalizeDiacritics(givenName)", "Jose"),
        (
            "NormalizeDiacritics(\"Łukasz Wróbel-Søren\")",
            "Lukasz Wrobel-Soren",
        ),
        (
            "NormalizeDiacritics(\"Straße Æsir Œuvre Þór Đorđe\")",
            "Strasse AEsir OEuvre Thor Dorde",
        ),
        ("NormalizeDiacritics(\"Ａｎｎａ\")", "Anna"),
        ("NormalizeDiacritics(missing)", "null"),
    ],
    eval: normalize_diacritics,
    prepare: None,
};

fn normalize_diacritics(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| Ok(Value::Str(strip_diacritics(s))))
}

/// Removes diacritics; ASCII input is returned as is, without allocating.
fn strip_diacritics(s: String) -> String {
    if s.is_ascii() {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'ħ' => out.push('h'),
            'Ħ' => out.push('H'),
            'ŧ' => out.push('t'),
            'Ŧ' => out.push('T'),
            'ı' => out.push('i'),
            'ß' => out.push_str("ss"),
            'ẞ' => out.push_str("SS"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("Th"),
            c => out.push(c),
        }
    }
    out
}

pub(super) const STRIP_SPACES: FunctionDef = FunctionDef {
    name: "StripSpaces",
    returns: Some(ValueType::String),
    signature: "StripSpaces(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value with every whitespace character removed (spaces, tabs, no-break \
              spaces). Elementwise; null stays null.",
    examples: &[
        ("StripSpaces(\" van der  Berg \")", "vanderBerg"),
        ("StripSpaces(\"a\u{a0}b\\tc\")", "abc"),
        ("StripSpaces(missing)", "null"),
    ],
    eval: strip_spaces,
    prepare: None,
};

fn strip_spaces(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |mut s| {
        if s.chars().any(char::is_whitespace) {
            s.retain(|c| !c.is_whitespace());
        }
        Ok(Value::Str(s))
    })
}

pub(super) const SPLIT: FunctionDef = FunctionDef {
    name: "Split",
    returns: Some(ValueType::String),
    signature: "Split(value, separator)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The value cut at every occurrence of the separator, as a multi-valued result; \
              empty pieces are dropped. A multi-valued input is split item by item into one \
              list. Null (or nothing but separators) gives null; an empty separator is an error.",
    examples: &[
        ("Split(\"a,b,,c\", \",\")", "a; b; c"),
        ("Count(Split(\"Sales;EMEA\", \";\"))", "2"),
        ("Split(missing, \",\")", "null"),
        (
            "Split(\"x\", \"\")",
            "error: Split: the separator must not be empty",
        ),
    ],
    eval: split,
    prepare: None,
};

fn split(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let separator = text(args.get(1));
    if separator.is_empty() {
        return Err(FnError::bad_argument(
            "Split: the separator must not be empty",
        ));
    }
    let mut out = Vec::new();
    for item in args.get(0).items() {
        let item = text(item);
        out.extend(
            item.split(&*separator)
                .filter(|piece| !piece.is_empty())
                .map(Value::from),
        );
    }
    Ok(Value::list(out))
}

pub(super) const CONTAINS: FunctionDef = FunctionDef {
    name: "Contains",
    returns: Some(ValueType::Boolean),
    signature: "Contains(haystack, needle)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "For a multi-valued haystack: whether one of its items equals the needle (as `==` \
              compares). For a single value: whether its text contains the needle's text \
              (case-sensitive). False when either is null.",
    examples: &[
        ("Contains(proxyAddresses, \"smtp:jm@contoso.com\")", "true"),
        ("Contains(proxyAddresses, \"jm@contoso.com\")", "false"),
        ("Contains(mail, \"@contoso\")", "true"),
        ("Contains(mail, \"@CONTOSO\")", "false"),
        ("Contains(missing, \"x\")", "false"),
    ],
    eval: contains,
    prepare: None,
};

fn contains(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let (haystack, needle) = (args.get(0), args.get(1));
    Ok(Value::Bool(match haystack {
        _ if needle.is_null() => false,
        Value::Null => false,
        Value::List(items) => items.iter().any(|item| ops::equals(item, needle)),
        single => text(single).contains(&*text(needle)),
    }))
}

pub(super) const STARTS_WITH: FunctionDef = FunctionDef {
    name: "StartsWith",
    returns: Some(ValueType::Boolean),
    signature: "StartsWith(value, prefix)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "Whether the value's text starts with the prefix (case-sensitive). For a \
              multi-valued value: whether any item does. False when either is null.",
    examples: &[
        ("StartsWith(mail, \"jose.\")", "true"),
        ("StartsWith(proxyAddresses, \"SMTP:\")", "true"),
        ("StartsWith(sn, \"mü\")", "false"),
        ("StartsWith(missing, \"\")", "false"),
    ],
    eval: starts_with,
    prepare: None,
};

fn starts_with(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    affix_test(args, |s, affix| s.starts_with(affix))
}

pub(super) const ENDS_WITH: FunctionDef = FunctionDef {
    name: "EndsWith",
    returns: Some(ValueType::Boolean),
    signature: "EndsWith(value, suffix)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "Whether the value's text ends with the suffix (case-sensitive). For a \
              multi-valued value: whether any item does. False when either is null.",
    examples: &[
        ("EndsWith(mail, \"@contoso.com\")", "true"),
        ("EndsWith(proxyAddresses, \"jm@contoso.com\")", "true"),
        ("EndsWith(sn, \"R\")", "false"),
        ("EndsWith(\"x\", null)", "false"),
    ],
    eval: ends_with,
    prepare: None,
};

fn ends_with(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    affix_test(args, |s, affix| s.ends_with(affix))
}

fn affix_test(args: &Args<'_, '_>, test: fn(&str, &str) -> bool) -> Result<Value, FnError> {
    let affix = args.get(1);
    if affix.is_null() {
        return Ok(Value::Bool(false));
    }
    let affix = text(affix);
    Ok(Value::Bool(
        args.get(0)
            .items()
            .iter()
            .any(|item| test(&text(item), &affix)),
    ))
}

pub(super) const WORD: FunctionDef = FunctionDef {
    name: "Word",
    returns: Some(ValueType::String),
    signature: "Word(value, number, separators)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "Word `number` (1-based) of the value, where words are the non-empty runs of \
              characters between any of the characters in `separators`. Null when there is no \
              such word or the number is below 1. Elementwise; null stays null.",
    examples: &[
        ("Word(displayName, 2, \", \")", "José"),
        ("Word(\"a  b\", 2, \" \")", "b"),
        ("Word(\"Ana María López\", 3, \" \")", "López"),
        ("Word(\"one\", 2, \" \")", "null"),
        ("Word(missing, 1, \" \")", "null"),
    ],
    eval: word,
    prepare: None,
};

fn word(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let number = int_arg(args.get(1), "Word", "number")?;
    let value = args.take(0);
    let separators = text(args.get(2));
    let Some(index) = usize::try_from(number).ok().and_then(|n| n.checked_sub(1)) else {
        return Ok(Value::Null);
    };
    map_text(value, |s| {
        Ok(s.split(|c| separators.contains(c))
            .filter(|w| !w.is_empty())
            .nth(index)
            .map_or(Value::Null, Value::from))
    })
}

pub(super) const APPEND: FunctionDef = FunctionDef {
    name: "Append",
    returns: Some(ValueType::String),
    signature: "Append(value, suffix)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The value followed by the suffix. Unlike `+`, a null value gives null (no \
              \"@contoso.com\" for a missing name). Elementwise.",
    examples: &[
        (
            "Append(Lower(NormalizeDiacritics(givenName)), \"@contoso.com\")",
            "jose@contoso.com",
        ),
        ("Append(missing, \"@contoso.com\")", "null"),
        ("Append(\"a\", null)", "a"),
    ],
    eval: append,
    prepare: None,
};

fn append(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let value = args.take(0);
    let suffix = text(args.get(1));
    map_text(value, |mut s| {
        s.push_str(&suffix);
        Ok(Value::Str(s))
    })
}

#[cfg(test)]
mod tests {
    use super::strip_diacritics;
    use crate::functions::tests::eval_str as eval;

    #[test]
    fn strip_diacritics_covers_the_letters_nfkd_leaves() {
        assert_eq!(
            strip_diacritics("łŁøØđĐßæÆœŒþðı".into()),
            "lLoOdDssaeAEoeOEthdi"
        );
        assert_eq!(strip_diacritics("Crème Brûlée".into()), "Creme Brulee");
        assert_eq!(strip_diacritics("日本".into()), "日本");
        assert_eq!(strip_diacritics(String::new()), "");
    }

    #[test]
    fn string_functions_apply_elementwise() {
        assert_eq!(eval("Upper(Split(\"a,é\", \",\"))"), "A; É");
        assert_eq!(eval("Trim(Split(\" a , b \", \",\"))"), "a; b");
        assert_eq!(eval("Left(Split(\"abc,de\", \",\"), 1)"), "a; d");
        assert_eq!(eval("Right(Split(\"abc,de\", \",\"), 1)"), "c; e");
        assert_eq!(eval("Mid(Split(\"abc,de\", \",\"), 2, 1)"), "b; e");
        assert_eq!(eval("Word(Split(\"a b,c\", \",\"), 2, \" \")"), "b");
        assert_eq!(eval("Append(Split(\"a,b\", \",\"), \"!\")"), "a!; b!");
        assert_eq!(eval("StripSpaces(Split(\"a b,c d\", \",\"))"), "ab; cd");
        assert_eq!(eval("NormalizeDiacritics(Split(\"é,ø\", \",\"))"), "e; o");
    }

    #[test]
    fn empty_values_and_non_strings() {
        assert_eq!(eval("Lower(\"\")"), "");
        assert_eq!(eval("Left(\"\", 3)"), "");
        assert_eq!(eval("Right(\"\", 3)"), "");
        assert_eq!(eval("Right(\"abc\", 0)"), "");
        assert_eq!(eval("Mid(\"\", 1, 3)"), "");
        assert_eq!(eval("Lower(514)"), "514");
        assert_eq!(eval("Left(userAccountControl, 2)"), "51");
        assert_eq!(eval("Replace(\"aaa\", \"\", \"b\")"), "aaa");
        assert_eq!(eval("Split(\",,\", \",\")"), "null");
        assert_eq!(eval("Join(\", \", \"\")"), "null");
        assert_eq!(eval("Word(\"a b\", 0, \" \")"), "null");
        assert_eq!(eval("Word(\"a b\", 1, \"\")"), "a b");
        assert_eq!(eval("Contains(\"abc\", \"\")"), "true");
        assert_eq!(eval("Contains(\"abc\", null)"), "false");
        assert_eq!(eval("Contains(514, 1)"), "true");
        assert_eq!(eval("Truncate(\"👍🏽x\", 1)"), "👍");
    }

    #[test]
    fn count_arguments_are_checked() {
        assert_eq!(
            eval("Left(\"abc\", \"two\")"),
            "error: Left: count must be an integer, found \"two\""
        );
        assert_eq!(eval("Left(\"abc\", \"2\")"), "ab");
        assert_eq!(
            eval("Truncate(\"abc\", null)"),
            "error: Truncate: maxLength must be an integer, found null"
        );
        assert_eq!(
            eval("Mid(\"abc\", 1, -2)"),
            "error: Mid: length must not be negative, found -2"
        );
        assert_eq!(
            eval("Word(\"abc\", true, \" \")"),
            "error: Word: number must be an integer, found the boolean true"
        );
    }
}
