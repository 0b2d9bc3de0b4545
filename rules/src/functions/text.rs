//! Text functions of the Entra references (provisioning, cloud sync and
//! Connect's sync rules) that mvsync's own set lacked: InStr, InStrRev,
//! Len, PCase, LTrim, RTrim, PadLeft, PadRight, ReplaceChars, and the
//! case functions under their Entra names (ToLower, ToUpper with a
//! culture, LCase, UCase).
//!
//! Positions are 1-based and count characters, as the references do.

use super::util::{count_arg, int_arg, map_text, text};
use super::{Args, FnError, FunctionDef};
use crate::{Env, Value, ValueType};

/// Case-insensitive comparison when `compare` is 1 (VBScript's
/// vbTextCompare); exact otherwise.
fn folded(s: &str, compare: &Value) -> Result<String, FnError> {
    let ignore_case = match compare {
        Value::Null => false,
        Value::Str(c) if c.eq_ignore_ascii_case("vbTextCompare") => true,
        Value::Str(c) if c.eq_ignore_ascii_case("vbBinaryCompare") => false,
        other => int_arg(other, "InStr", "compare")? != 0,
    };
    Ok(if ignore_case {
        s.to_lowercase()
    } else {
        s.to_owned()
    })
}

/// The 1-based character position of `needle` in `haystack`, searching
/// forwards from character `start` (or backwards up to it).
fn char_position(haystack: &str, needle: &str, start: usize, backwards: bool) -> i64 {
    let chars: Vec<char> = haystack.chars().collect();
    let wanted: Vec<char> = needle.chars().collect();
    let position = |i: usize| i64::try_from(i + 1).unwrap_or(0);
    if !backwards && start > chars.len() + usize::from(wanted.is_empty()) {
        return 0; // VBScript: a start past the end finds nothing
    }
    if wanted.is_empty() {
        return position(start.saturating_sub(1).min(chars.len()));
    }
    if wanted.len() > chars.len() {
        return 0;
    }
    let last = chars.len() - wanted.len();
    let at = |i: usize| chars[i..].starts_with(&wanted);
    let found = if backwards {
        // The match must lie within the first `start` characters.
        let Some(latest) = start.min(chars.len()).checked_sub(wanted.len()) else {
            return 0;
        };
        (0..=latest.min(last)).rev().find(|&i| at(i))
    } else {
        (start.saturating_sub(1)..=last).find(|&i| at(i))
    };
    found.map_or(0, position)
}

pub(super) const IN_STR: FunctionDef = FunctionDef {
    name: "InStr",
    returns: Some(ValueType::Integer),
    signature: "InStr(value, match, [start], [compare])",
    min_args: 2,
    max_args: Some(4),
    pairs: false,
    summary: "The 1-based position of the first `match` in the value, from character `start` \
              (default 1); 0 when it is not there. `compare` 1 ignores case. Null when the value \
              is null.",
    examples: &[
        ("InStr(\"The quick brown fox\", \"quick\")", "5"),
        ("InStr(\"repEated\", \"e\", 3, 1)", "4"),
        ("InStr(\"repEated\", \"e\", 3)", "7"),
        (
            "InStr(\"The quick brown fox\", \"QUICK\", 1, vbTextCompare)",
            "5",
        ),
        ("InStr(\"Zoë Ørsted\", \"Ø\")", "5"),
        ("InStr(\"abc\", \"x\")", "0"),
        ("InStr(\"abc\", \"c\", 9)", "0"),
        ("InStr(missing, \"x\")", "null"),
    ],
    eval: in_str,
    prepare: None,
};

fn in_str(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    if args.get(0).is_null() {
        return Ok(Value::Null);
    }
    let start = match args.get(2) {
        Value::Null => 1,
        v => count_arg(v, "InStr", "start")?.max(1),
    };
    let haystack = folded(&text(args.get(0)), args.get(3))?;
    let needle = folded(&text(args.get(1)), args.get(3))?;
    Ok(Value::Int(char_position(&haystack, &needle, start, false)))
}

pub(super) const IN_STR_REV: FunctionDef = FunctionDef {
    name: "InStrRev",
    returns: Some(ValueType::Integer),
    signature: "InStrRev(value, match, [start], [compare])",
    min_args: 2,
    max_args: Some(4),
    pairs: false,
    summary: "The 1-based position of the last `match` in the value that starts at or before \
              character `start` (default: the end); 0 when there is none. `compare` 1 ignores \
              case. Null when the value is null.",
    examples: &[
        ("InStrRev(\"abbcdbbbef\", \"bb\")", "7"),
        ("InStrRev(\"abbcdbbbef\", \"bb\", 5)", "2"),
        ("InStrRev(\"abcd\", \"cd\", 3)", "0"),
        ("InStrRev(\"CN=a,OU=b,DC=c\", \",\")", "10"),
        ("InStrRev(\"abc\", \"x\")", "0"),
        ("InStrRev(missing, \"x\")", "null"),
    ],
    eval: in_str_rev,
    prepare: None,
};

fn in_str_rev(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    if args.get(0).is_null() {
        return Ok(Value::Null);
    }
    let haystack = folded(&text(args.get(0)), args.get(3))?;
    let needle = folded(&text(args.get(1)), args.get(3))?;
    let start = match args.get(2) {
        Value::Null => usize::MAX,
        v => match int_arg(v, "InStrRev", "start")? {
            -1 => usize::MAX,
            n => count_arg(&Value::Int(n), "InStrRev", "start")?,
        },
    };
    Ok(Value::Int(char_position(&haystack, &needle, start, true)))
}

pub(super) const LEN: FunctionDef = FunctionDef {
    name: "Len",
    returns: Some(ValueType::Integer),
    signature: "Len(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The number of characters in the value (0 for an empty string). Elementwise; null \
              stays null.",
    examples: &[
        ("Len(\"John Doe\")", "8"),
        ("Len(sn)", "6"),
        ("Len(\"\")", "0"),
        ("Len(missing)", "null"),
    ],
    eval: len,
    prepare: None,
};

fn len(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| {
        Ok(Value::Int(
            i64::try_from(s.chars().count()).unwrap_or(i64::MAX),
        ))
    })
}

pub(super) const PCASE: FunctionDef = FunctionDef {
    name: "PCase",
    returns: Some(ValueType::String),
    signature: "PCase(value, [wordSeparators])",
    min_args: 1,
    max_args: Some(2),
    pairs: false,
    summary: "Each word's first letter in upper case and the rest in lower case. Words are \
              separated by white space, punctuation and symbols (.NET's title-case \
              boundaries), or only by the characters of `wordSeparators` when given. \
              Elementwise; null stays null.",
    examples: &[
        ("PCase(\"NEW YORK\")", "New York"),
        (
            "PCase(\"PABLO GONSALVES (SECOND)\")",
            "Pablo Gonsalves (Second)",
        ),
        ("PCase(\"joHn o'BRIEN-smith\")", "John O'Brien-Smith"),
        ("PCase(\"joHn o'BRIEN-smith\", \" \")", "John O'brien-smith"),
        ("PCase(\"élodie ørsted\")", "Élodie Ørsted"),
        ("PCase(missing)", "null"),
    ],
    eval: pcase,
    prepare: None,
};

fn pcase(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let separators: Option<Vec<char>> = match args.get(1) {
        Value::Null => None,
        v => Some(text(v).chars().collect()),
    };
    map_text(args.take(0), |s| {
        let mut out = String::with_capacity(s.len());
        let mut start = true;
        for c in s.chars() {
            let separator = match &separators {
                Some(set) => set.contains(&c),
                // .NET's ToTitleCase word boundaries: white space,
                // punctuation and symbols.
                None => !c.is_alphanumeric(),
            };
            if separator {
                out.push(c);
                start = true;
            } else if start {
                out.extend(c.to_uppercase());
                start = false;
            } else {
                out.extend(c.to_lowercase());
            }
        }
        Ok(Value::Str(out))
    })
}

pub(super) const LTRIM: FunctionDef = FunctionDef {
    name: "LTrim",
    returns: Some(ValueType::String),
    signature: "LTrim(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value without leading white space. Elementwise; null stays null.",
    examples: &[("LTrim(\" Test \")", "Test "), ("LTrim(missing)", "null")],
    eval: ltrim,
    prepare: None,
};

fn ltrim(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| Ok(Value::str(s.trim_start())))
}

pub(super) const RTRIM: FunctionDef = FunctionDef {
    name: "RTrim",
    returns: Some(ValueType::String),
    signature: "RTrim(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value without trailing white space. Elementwise; null stays null.",
    examples: &[("RTrim(\" Test \")", " Test"), ("RTrim(missing)", "null")],
    eval: rtrim,
    prepare: None,
};

fn rtrim(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| Ok(Value::str(s.trim_end())))
}

/// The longest value PadLeft and PadRight make: an attribute, not a file.
const MAX_PAD: usize = 65_536;

fn pad(args: &mut Args<'_, '_>, name: &str, left: bool) -> Result<Value, FnError> {
    let length = count_arg(args.get(1), name, "length")?;
    if length > MAX_PAD {
        return Err(FnError::bad_argument(format!(
            "{name}: length {length} is more than {MAX_PAD} characters"
        )));
    }
    let fill = match args.get(2) {
        Value::Null => ' ',
        v => {
            let t = text(v);
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(FnError::bad_argument(format!(
                        "{name}: padCharacter must be one character, found \"{t}\""
                    )))
                }
            }
        }
    };
    map_text(args.take(0), |s| {
        let missing = length.saturating_sub(s.chars().count());
        if missing == 0 {
            return Ok(Value::Str(s));
        }
        let padding: String = std::iter::repeat_n(fill, missing).collect();
        Ok(Value::Str(if left { padding + &s } else { s + &padding }))
    })
}

pub(super) const PAD_LEFT: FunctionDef = FunctionDef {
    name: "PadLeft",
    returns: Some(ValueType::String),
    signature: "PadLeft(value, length, [padCharacter])",
    min_args: 2,
    max_args: Some(3),
    pairs: false,
    summary: "The value padded on the left with `padCharacter` (a space by default) to \
              `length` characters; a longer value is returned as it is. Elementwise; null stays \
              null.",
    examples: &[
        ("PadLeft(\"User\", 10, \"0\")", "000000User"),
        ("PadLeft(\"42\", 5)", "   42"),
        ("PadLeft(\"toolong\", 3, \"0\")", "toolong"),
        ("PadLeft(missing, 3)", "null"),
    ],
    eval: pad_left,
    prepare: None,
};

fn pad_left(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    pad(args, "PadLeft", true)
}

pub(super) const PAD_RIGHT: FunctionDef = FunctionDef {
    name: "PadRight",
    returns: Some(ValueType::String),
    signature: "PadRight(value, length, [padCharacter])",
    min_args: 2,
    max_args: Some(3),
    pairs: false,
    summary: "The value padded on the right with `padCharacter` (a space by default) to \
              `length` characters; a longer value is returned as it is. Elementwise; null stays \
              null.",
    examples: &[
        ("PadRight(\"User\", 10, \"0\")", "User000000"),
        (
            "PadRight(\"ab\", 3, \"xy\")",
            "error: PadRight: padCharacter must be one character, found \"xy\"",
        ),
        ("PadRight(missing, 3)", "null"),
    ],
    eval: pad_right,
    prepare: None,
};

fn pad_right(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    pad(args, "PadRight", false)
}

pub(super) const REPLACE_CHARS: FunctionDef = FunctionDef {
    name: "ReplaceChars",
    returns: Some(ValueType::String),
    signature: "ReplaceChars(value, replacementMap)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The value with single characters replaced as the map says: \
              `\"é:e,ö:o\"`, pairs separated by commas, a character and its replacement (empty \
              to remove it) separated by a colon; white space around entries is ignored, as \
              Entra Connect documents. `%2C`, `%3A`, `%20` and `%25` stand for a comma, a colon, \
              a space and a percent sign (mvsync's own, since `,` and `:` are reserved). \
              Elementwise; null stays null.",
    examples: &[
        (
            "ReplaceChars(\"Räksmörgås\", \"ä:a,ö:o,å:a\")",
            "Raksmorgas",
        ),
        (
            "ReplaceChars(\"Zoë Ørsted\", \"ë:e, Ø:O, %20:\")",
            "ZoeOrsted",
        ),
        ("ReplaceChars(\"a,b\", \"%2C:;\")", "a;b"),
        ("ReplaceChars(missing, \"a:b\")", "null"),
    ],
    eval: replace_chars,
    prepare: None,
};

fn replace_chars(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let decode = |s: &str| {
        s.trim()
            .replace("%2C", ",")
            .replace("%3A", ":")
            .replace("%20", " ")
            .replace("%25", "%")
    };
    let map_text_arg = text(args.get(1)).into_owned();
    let mut map: Vec<(char, String)> = Vec::new();
    for pair in map_text_arg.split(',').filter(|p| !p.trim().is_empty()) {
        let (from, to) = pair.split_once(':').ok_or_else(|| {
            FnError::bad_argument(format!(
                "ReplaceChars: \"{pair}\" in the map is not `character:replacement`"
            ))
        })?;
        let from = decode(from);
        let mut chars = from.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(FnError::bad_argument(format!(
                "ReplaceChars: \"{from}\" in the map is not one character"
            )));
        };
        map.push((c, decode(to)));
    }
    map_text(args.take(0), |s| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match map.iter().find(|(from, _)| *from == c) {
                Some((_, to)) => out.push_str(to),
                None => out.push(c),
            }
        }
        Ok(Value::Str(out))
    })
}

/// A culture argument: accepted (and checked to be a culture name) but
/// case mapping follows Unicode's rules, which agree with every culture but
/// Turkish and Azeri dotted/dotless i.
fn culture(args: &Args<'_, '_>, name: &str) -> Result<bool, FnError> {
    match args.get(1) {
        Value::Null => Ok(false),
        v => {
            let c = text(v);
            let valid = c
                .split('-')
                .all(|part| !part.is_empty() && part.chars().all(|ch| ch.is_ascii_alphanumeric()));
            if !valid {
                return Err(FnError::bad_argument(format!(
                    "{name}: \"{c}\" is not a culture name (such as en-US)"
                )));
            }
            Ok(c.starts_with("tr") || c.starts_with("az"))
        }
    }
}

fn case(args: &mut Args<'_, '_>, name: &str, upper: bool) -> Result<Value, FnError> {
    let turkic = culture(args, name)?;
    map_text(args.take(0), |s| {
        Ok(Value::Str(match (upper, turkic) {
            (true, true) => s.replace('i', "İ").to_uppercase(),
            (true, false) => s.to_uppercase(),
            (false, true) => s.replace('I', "ı").to_lowercase(),
            (false, false) => s.to_lowercase(),
        }))
    })
}

pub(super) const TO_LOWER: FunctionDef = FunctionDef {
    name: "ToLower",
    returns: Some(ValueType::String),
    signature: "ToLower(value, [culture])",
    min_args: 1,
    max_args: Some(2),
    pairs: false,
    summary: "The value in lower case, by Unicode's rules (a Turkish or Azeri `culture` maps \
              `I` to dotless `ı`). Elementwise; null stays null.",
    examples: &[
        (
            "ToLower(\"Joe.Smith@Contoso.com\")",
            "joe.smith@contoso.com",
        ),
        ("ToLower(\"ISTANBUL\", \"tr-TR\")", "ıstanbul"),
        ("ToLower(\"Zoë\", \"en-US\")", "zoë"),
        ("ToLower(missing)", "null"),
    ],
    eval: to_lower,
    prepare: None,
};

fn to_lower(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    case(args, "ToLower", false)
}

pub(super) const TO_UPPER: FunctionDef = FunctionDef {
    name: "ToUpper",
    returns: Some(ValueType::String),
    signature: "ToUpper(value, [culture])",
    min_args: 1,
    max_args: Some(2),
    pairs: false,
    summary: "The value in upper case, by Unicode's rules (a Turkish or Azeri `culture` maps \
              `i` to dotted `İ`). Elementwise; null stays null.",
    examples: &[
        (
            "ToUpper(\"Joe.Smith@Contoso.com\")",
            "JOE.SMITH@CONTOSO.COM",
        ),
        ("ToUpper(\"istanbul\", \"tr-TR\")", "İSTANBUL"),
        ("ToUpper(\"straße\")", "STRASSE"),
        ("ToUpper(missing)", "null"),
    ],
    eval: to_upper,
    prepare: None,
};

fn to_upper(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    case(args, "ToUpper", true)
}

pub(super) const LCASE: FunctionDef = FunctionDef {
    name: "LCase",
    returns: Some(ValueType::String),
    signature: "LCase(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value in lower case (Entra Connect's name for Lower). Elementwise; null stays \
              null.",
    examples: &[("LCase(\"TeSt\")", "test"), ("LCase(missing)", "null")],
    eval: to_lower,
    prepare: None,
};

pub(super) const UCASE: FunctionDef = FunctionDef {
    name: "UCase",
    returns: Some(ValueType::String),
    signature: "UCase(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value in upper case (Entra Connect's name for Upper). Elementwise; null stays \
              null.",
    examples: &[("UCase(\"TeSt\")", "TEST"), ("UCase(missing)", "null")],
    eval: to_upper,
    prepare: None,
};
