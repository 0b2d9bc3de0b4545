//! Conversions and tests of the Entra references: CStr, CNum, CBool,
//! CGuid, StringFromGuid, StringFromSid, ConvertToBase64 and
//! ConvertFromBase64 (UTF-16LE unless told otherwise, as documented),
//! ConvertToUTF8Hex, IsBitSet, IsNumeric, IsString, IsNull, Not.

use base64::Engine as _;

use super::convert::guid_bytes;
use super::util::{describe, int_arg, map_items, map_text, parse_int, text};
use super::{Args, FnError, FunctionDef};
use crate::{Env, Value, ValueType};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(super) const CSTR: FunctionDef = FunctionDef {
    name: "CStr",
    returns: Some(ValueType::String),
    signature: "CStr(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as a string (integers in decimal, booleans as true/false, bytes as \
              base64, date-times as RFC 3339). Elementwise; null stays null.",
    examples: &[
        ("CStr(123)", "123"),
        ("CStr(userAccountControl)", "514"),
        ("CStr(missing)", "null"),
    ],
    eval: cstr,
    prepare: None,
};

fn cstr(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| Ok(Value::Str(s)))
}

pub(super) const CNUM: FunctionDef = FunctionDef {
    name: "CNum",
    returns: Some(ValueType::Integer),
    signature: "CNum(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as an integer: a string of digits (an optional sign, surrounding spaces \
              allowed), a boolean as 1 or 0. Anything else is an error. Elementwise; null stays \
              null.",
    examples: &[
        ("CNum(\" 42 \")", "42"),
        ("CNum(\"-7\") * 2", "-14"),
        ("CNum(employeeId)", "42"),
        ("CNum(\"4x\")", "error: CNum: \"4x\" is not a number"),
        ("CNum(missing)", "null"),
    ],
    eval: cnum,
    prepare: None,
};

fn cnum(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| match &v {
        Value::Int(_) => Ok(v),
        Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Value::Str(s) => parse_int(s)
            .map(Value::Int)
            .ok_or_else(|| FnError::bad_argument(format!("CNum: \"{s}\" is not a number"))),
        other => Err(FnError::bad_argument(format!(
            "CNum: {} is not a number",
            describe(other)
        ))),
    })
}

pub(super) const CBOOL: FunctionDef = FunctionDef {
    name: "CBool",
    returns: Some(ValueType::Boolean),
    signature: "CBool(expression)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as a boolean: true, false, \"true\"/\"false\" (any case), and a number \
              (or a string of one) true unless 0. Anything else is an error. Null stays null.",
    examples: &[
        ("CBool(1 = 1)", "true"),
        ("CBool(\"False\")", "false"),
        ("CBool(\"2\")", "true"),
        ("CBool(0)", "false"),
        (
            "CBool(\"maybe\")",
            "error: CBool: \"maybe\" is not a boolean",
        ),
        ("CBool(missing)", "null"),
    ],
    eval: cbool,
    prepare: None,
};

fn cbool(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| match &v {
        Value::Bool(_) => Ok(v),
        Value::Int(i) => Ok(Value::Bool(*i != 0)),
        Value::Str(s) => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                parse_int(t).map(|n| Value::Bool(n != 0)).ok_or_else(|| {
                    FnError::bad_argument(format!("CBool: \"{s}\" is not a boolean"))
                })
            }
        }
        other => Err(FnError::bad_argument(format!(
            "CBool: {} is not a boolean",
            describe(other)
        ))),
    })
}

/// The text form of a GUID's 16 bytes in Microsoft's order.
fn guid_text(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

pub(super) const CGUID: FunctionDef = FunctionDef {
    name: "CGuid",
    returns: Some(ValueType::Binary),
    signature: "CGuid(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "A GUID's text form (`{…}` or bare, with dashes) as its 16 bytes in Microsoft's \
              order, as AD stores objectGUID; bytes are returned as they are. Anything else is an \
              error. Elementwise; null stays null.",
    examples: &[
        (
            "StringFromGuid(CGuid(\"{12345678-1234-5678-9abc-def012345678}\"))",
            "12345678-1234-5678-9abc-def012345678",
        ),
        (
            "CGuid(\"12345678-1234-5678-9abc-def012345678\") = objectGUID",
            "true",
        ),
        ("CGuid(\"nope\")", "error: CGuid: \"nope\" is not a GUID"),
        ("CGuid(missing)", "null"),
    ],
    eval: cguid,
    prepare: None,
};

fn cguid(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| match &v {
        Value::Bytes(b) if b.len() == 16 => Ok(v),
        Value::Str(s) => guid_bytes(s)
            .map(|b| Value::Bytes(b.to_vec()))
            .ok_or_else(|| FnError::bad_argument(format!("CGuid: \"{s}\" is not a GUID"))),
        other => Err(FnError::bad_argument(format!(
            "CGuid: {} is not a GUID",
            describe(other)
        ))),
    })
}

pub(super) const STRING_FROM_GUID: FunctionDef = FunctionDef {
    name: "StringFromGuid",
    returns: Some(ValueType::String),
    signature: "StringFromGuid(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "A binary GUID (16 bytes in Microsoft's order, as objectGUID) as its text form, \
              lower-case, without braces. Elementwise; null stays null.",
    examples: &[
        (
            "StringFromGuid(objectGUID)",
            "12345678-1234-5678-9abc-def012345678",
        ),
        (
            "StringFromGuid(\"x\")",
            "error: StringFromGuid: expected the 16 bytes of a GUID, found \"x\"",
        ),
        ("StringFromGuid(missing)", "null"),
    ],
    eval: string_from_guid,
    prepare: None,
};

fn string_from_guid(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| match &v {
        Value::Bytes(b) => guid_text(b).map(Value::Str).ok_or_else(|| {
            FnError::bad_argument(format!(
                "StringFromGuid: expected the 16 bytes of a GUID, found {}",
                describe(&v)
            ))
        }),
        other => Err(FnError::bad_argument(format!(
            "StringFromGuid: expected the 16 bytes of a GUID, found {}",
            describe(other)
        ))),
    })
}

pub(super) const STRING_FROM_SID: FunctionDef = FunctionDef {
    name: "StringFromSid",
    returns: Some(ValueType::String),
    signature: "StringFromSid(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "A binary security identifier (objectSid) as its text form `S-1-5-21-…`. \
              Elementwise; null stays null.",
    examples: &[
        (
            "StringFromSid(FromBase64(\"AQUAAAAAAAUVAAAAoGXPfnhLm1/nfIdwUgQAAA==\"))",
            "S-1-5-21-2127521184-1604012920-1887927527-1106",
        ),
        (
            "StringFromSid(\"x\")",
            "error: StringFromSid: expected a binary security identifier, found \"x\"",
        ),
        ("StringFromSid(missing)", "null"),
    ],
    eval: string_from_sid,
    prepare: None,
};

fn sid_text(b: &[u8]) -> Option<String> {
    let revision = *b.first()?;
    let count = usize::from(*b.get(1)?);
    if b.len() != 8 + 4 * count {
        return None;
    }
    let authority = b[2..8]
        .iter()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let mut out = format!("S-{revision}-{authority}");
    for i in 0..count {
        let at = 8 + 4 * i;
        let sub = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        out.push_str(&format!("-{sub}"));
    }
    Some(out)
}

fn string_from_sid(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| match &v {
        Value::Bytes(b) => sid_text(b).map(Value::Str).ok_or_else(|| {
            FnError::bad_argument(format!(
                "StringFromSid: {} bytes are not a security identifier",
                b.len()
            ))
        }),
        other => Err(FnError::bad_argument(format!(
            "StringFromSid: expected a binary security identifier, found {}",
            describe(other)
        ))),
    })
}

/// An encoding name as the references accept them.
fn encoding(value: &Value, function: &str) -> Result<&'static str, FnError> {
    match value {
        Value::Null => Ok("utf-16"),
        v => {
            let name = text(v).to_ascii_lowercase().replace(['-', '_'], "");
            match name.as_str() {
                "utf16" | "unicode" | "utf16le" => Ok("utf-16"),
                "utf8" => Ok("utf-8"),
                "ascii" | "usascii" => Ok("ascii"),
                _ => Err(FnError::bad_argument(format!(
                    "{function}: unknown encoding \"{}\" (expected UTF-16, UTF-8 or ASCII)",
                    text(v)
                ))),
            }
        }
    }
}

fn encode(s: &str, encoding: &str) -> Vec<u8> {
    match encoding {
        "utf-16" => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "ascii" => s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        _ => s.as_bytes().to_vec(),
    }
}

pub(super) const CONVERT_TO_BASE64: FunctionDef = FunctionDef {
    name: "ConvertToBase64",
    returns: Some(ValueType::String),
    signature: "ConvertToBase64(source, [encoding])",
    min_args: 1,
    max_args: Some(2),
    pairs: false,
    summary: "The text encoded as base64, from its UTF-16LE bytes by default as documented \
              (`encoding` UTF-8 or ASCII for others); bytes are encoded as they are. \
              Elementwise; null stays null.",
    examples: &[
        (
            "ConvertToBase64(\"Hello world!\")",
            "SABlAGwAbABvACAAdwBvAHIAbABkACEA",
        ),
        (
            "ConvertToBase64(\"Hello world!\", \"UTF-8\")",
            "SGVsbG8gd29ybGQh",
        ),
        ("ConvertToBase64(missing)", "null"),
    ],
    eval: convert_to_base64,
    prepare: None,
};

fn convert_to_base64(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let enc = encoding(args.get(1), "ConvertToBase64")?;
    map_items(args.take(0), |v| {
        Ok(Value::Str(match &v {
            Value::Bytes(b) => B64.encode(b),
            other => B64.encode(encode(&text(other), enc)),
        }))
    })
}

pub(super) const CONVERT_FROM_BASE64: FunctionDef = FunctionDef {
    name: "ConvertFromBase64",
    returns: Some(ValueType::String),
    signature: "ConvertFromBase64(source, [encoding])",
    min_args: 1,
    max_args: Some(2),
    pairs: false,
    summary: "The text whose base64 `source` holds, read as UTF-16LE by default as documented \
              (`encoding` UTF-8 or ASCII for others). Invalid base64 or text is an error. \
              Elementwise; null stays null.",
    examples: &[
        (
            "ConvertFromBase64(\"SABlAGwAbABvACAAdwBvAHIAbABkACEA\")",
            "Hello world!",
        ),
        (
            "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", \"UTF8\")",
            "Hello world!",
        ),
        (
            "ConvertFromBase64(\"%%\")",
            "error: ConvertFromBase64: \"%%\" is not base64",
        ),
        ("ConvertFromBase64(missing)", "null"),
    ],
    eval: convert_from_base64,
    prepare: None,
};

fn convert_from_base64(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let enc = encoding(args.get(1), "ConvertFromBase64")?;
    map_text(args.take(0), |s| {
        let bytes = B64.decode(s.trim()).map_err(|_| {
            FnError::bad_argument(format!("ConvertFromBase64: \"{s}\" is not base64"))
        })?;
        let decoded = match enc {
            "utf-16" if bytes.len() % 2 == 0 => {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            "utf-16" => None,
            _ => String::from_utf8(bytes).ok(),
        };
        decoded.map(Value::Str).ok_or_else(|| {
            FnError::bad_argument(format!(
                "ConvertFromBase64: \"{s}\" does not hold {enc} text"
            ))
        })
    })
}

pub(super) const CONVERT_TO_UTF8_HEX: FunctionDef = FunctionDef {
    name: "ConvertToUTF8Hex",
    returns: Some(ValueType::String),
    signature: "ConvertToUTF8Hex(source)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The text's UTF-8 bytes as upper-case hexadecimal. Elementwise; null stays null.",
    examples: &[
        (
            "ConvertToUTF8Hex(\"Hello world!\")",
            "48656C6C6F20776F726C6421",
        ),
        ("ConvertToUTF8Hex(\"é\")", "C3A9"),
        ("ConvertToUTF8Hex(missing)", "null"),
    ],
    eval: convert_to_utf8_hex,
    prepare: None,
};

fn convert_to_utf8_hex(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| {
        Ok(Value::Str(s.bytes().map(|b| format!("{b:02X}")).collect()))
    })
}

pub(super) const IS_BIT_SET: FunctionDef = FunctionDef {
    name: "IsBitSet",
    returns: Some(ValueType::Boolean),
    signature: "IsBitSet(value, flag)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "Whether any bit of the mask `flag` is set in the integer (`flag` is a mask, as \
              Entra Connect's documented `IsBitSet(&HF, 4)` is true: 2 tests the \
              account-disabled bit of userAccountControl). Null when the value is null.",
    examples: &[
        ("IsBitSet(&HF, 4)", "true"),
        ("IsBitSet(userAccountControl, 2)", "true"),
        ("IsBitSet(512, 2)", "false"),
        ("IsBitSet(missing, 2)", "null"),
    ],
    eval: is_bit_set,
    prepare: None,
};

fn is_bit_set(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    if args.get(0).is_null() {
        return Ok(Value::Null);
    }
    let value = int_arg(args.get(0), "IsBitSet", "value")?;
    let flag = int_arg(args.get(1), "IsBitSet", "flag")?;
    Ok(Value::Bool(value & flag != 0))
}

pub(super) const IS_NUMERIC: FunctionDef = FunctionDef {
    name: "IsNumeric",
    returns: Some(ValueType::Boolean),
    signature: "IsNumeric(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is an integer or a string CNum can read. False for null.",
    examples: &[
        ("IsNumeric(\"42\")", "true"),
        ("IsNumeric(employeeId)", "true"),
        ("IsNumeric(\"4x\")", "false"),
        ("IsNumeric(missing)", "false"),
    ],
    eval: is_numeric,
    prepare: None,
};

fn is_numeric(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(match args.get(0) {
        Value::Int(_) => true,
        Value::Str(s) => parse_int(s).is_some(),
        _ => false,
    }))
}

pub(super) const IS_STRING: FunctionDef = FunctionDef {
    name: "IsString",
    returns: Some(ValueType::Boolean),
    signature: "IsString(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is a string. False for null.",
    examples: &[
        ("IsString(sn)", "true"),
        ("IsString(userAccountControl)", "false"),
        ("IsString(missing)", "false"),
    ],
    eval: is_string,
    prepare: None,
};

fn is_string(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(matches!(args.get(0), Value::Str(_))))
}

pub(super) const IS_NULL: FunctionDef = FunctionDef {
    name: "IsNull",
    returns: Some(ValueType::Boolean),
    signature: "IsNull(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is null (missing). An empty string is not null; see \
              IsNullOrEmpty.",
    examples: &[
        ("IsNull(missing)", "true"),
        ("IsNull(nickname)", "false"),
        ("IsNull(sn)", "false"),
    ],
    eval: is_null,
    prepare: None,
};

fn is_null(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(args.get(0).is_null()))
}

pub(super) const NOT: FunctionDef = FunctionDef {
    name: "Not",
    returns: Some(ValueType::Boolean),
    signature: "Not(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The boolean opposite of the value (as `!`): true for false, null, 0 and \"false\".",
    examples: &[
        ("Not(IsPresent(sn))", "false"),
        ("Not(\"False\")", "true"),
        ("Not(missing)", "true"),
    ],
    eval: not,
    prepare: None,
};

fn not(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(!args.get(0).truthy()))
}

pub(super) const CREF: FunctionDef = FunctionDef {
    name: "CRef",
    returns: Some(ValueType::String),
    signature: "CRef(dn)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "A DN string as a reference (Entra Connect's CRef): mvsync keeps references in the \
              connector's own form, so the DN text is returned as it is, for DNComponent and \
              the like. Elementwise; null stays null.",
    examples: &[
        (
            "DNComponent(CRef(\"CN=Joe,OU=Users,DC=contoso,DC=com\"), 1)",
            "Joe",
        ),
        ("CRef(missing)", "null"),
    ],
    eval: cref,
    prepare: None,
};

fn cref(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| Ok(Value::Str(s)))
}

pub(super) const IS_GUID: FunctionDef = FunctionDef {
    name: "IsGuid",
    returns: Some(ValueType::Boolean),
    signature: "IsGuid(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is a GUID's text form CGuid can read (with or without braces). \
              False for null.",
    examples: &[
        ("IsGuid(\"{12345678-1234-5678-9abc-def012345678}\")", "true"),
        ("IsGuid(\"12345678123456789abcdef012345678\")", "true"),
        ("IsGuid(sn)", "false"),
        ("IsGuid(missing)", "false"),
    ],
    eval: is_guid,
    prepare: None,
};

fn is_guid(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(
        matches!(args.get(0), Value::Str(s) if guid_bytes(s).is_some()),
    ))
}

pub(super) const CONVERT_FROM_UTF8_HEX: FunctionDef = FunctionDef {
    name: "ConvertFromUTF8Hex",
    returns: Some(ValueType::String),
    signature: "ConvertFromUTF8Hex(source)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The text whose UTF-8 bytes the hexadecimal `source` holds (either case). Odd \
              length, a non-hex digit or bytes that are not UTF-8 are an error. Elementwise; \
              null stays null.",
    examples: &[
        (
            "ConvertFromUTF8Hex(\"48656C6C6F20776F726C6421\")",
            "Hello world!",
        ),
        ("ConvertFromUTF8Hex(ConvertToUTF8Hex(\"Zoë\"))", "Zoë"),
        (
            "ConvertFromUTF8Hex(\"4G\")",
            "error: ConvertFromUTF8Hex: \"4G\" is not hexadecimal UTF-8",
        ),
        ("ConvertFromUTF8Hex(missing)", "null"),
    ],
    eval: convert_from_utf8_hex,
    prepare: None,
};

fn convert_from_utf8_hex(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| {
        let bad = || {
            FnError::bad_argument(format!(
                "ConvertFromUTF8Hex: \"{s}\" is not hexadecimal UTF-8"
            ))
        };
        if !s.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let text = bytes
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        Ok(Value::Str(text))
    })
}

pub(super) const IS_EMPTY: FunctionDef = FunctionDef {
    name: "IsEmpty",
    returns: Some(ValueType::Boolean),
    signature: "IsEmpty(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is present but empty (the empty string), as Entra Connect \
              documents it; false for null (see IsNullOrEmpty) and for any other value.",
    examples: &[
        ("IsEmpty(nickname)", "true"),
        ("IsEmpty(missing)", "false"),
        ("IsEmpty(sn)", "false"),
    ],
    eval: is_empty,
    prepare: None,
};

fn is_empty(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(
        matches!(args.get(0), Value::Str(s) if s.is_empty()),
    ))
}

pub(super) const GUID: FunctionDef = FunctionDef {
    name: "Guid",
    returns: Some(ValueType::String),
    signature: "Guid()",
    min_args: 0,
    max_args: Some(0),
    pairs: false,
    summary: "A new random GUID (version 4) as text. Like SelectUniqueValue it is generated \
              once, when the object is provisioned by an outbound flow, and kept: a later sync \
              never generates another. Anywhere else it is an error.",
    examples: &[("Guid()", "00aa00aa-bb11-4c22-9d33-44ee44ee44ee")],
    eval: guid,
    prepare: None,
};

fn guid(_: &mut Args<'_, '_>, env: &dyn Env) -> Result<Value, FnError> {
    let r = env.random().ok_or_else(|| {
        FnError::new(
            "not-generated-here",
            "Guid can only be used in an outbound flow, where it is generated once at provisioning",
        )
    })?;
    // Version 4, variant 1 (RFC 4122).
    let r = (r & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{r:032x}");
    Ok(Value::Str(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )))
}

pub(super) const REDACT: FunctionDef = FunctionDef {
    name: "Redact",
    returns: None,
    signature: "Redact(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value, unchanged: in Entra it hides the value in provisioning logs, and \
              mvsync writes no attribute values to its logs, so there is nothing to hide.",
    examples: &[
        ("Redact(mail)", "jose.muller@contoso.com"),
        ("Redact(missing)", "null"),
    ],
    eval: redact,
    prepare: None,
};

fn redact(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(args.take(0))
}
