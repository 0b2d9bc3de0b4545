//! Conversions: ToString, ToInt, ToBool, ToBase64, FromBase64,
//! GuidToImmutableId, BitAnd, BitOr.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::util::{describe, int_arg, map_items, parse_int};
use super::{Args, FnError, FunctionDef};
use crate::{Env, Value, ValueType};

/// Standard alphabet, padding optional when decoding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) const TO_STRING: FunctionDef = FunctionDef {
    name: "ToString",
    returns: Some(ValueType::String),
    signature: "ToString(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as a string: integers in decimal, booleans as true/false, binary as \
              base64, date-times as RFC 3339, references as ref:<id>. Elementwise; null stays \
              null.",
    examples: &[
        ("ToString(userAccountControl) + \"!\"", "514!"),
        ("ToString(hireDate)", "2021-06-01T08:00:00Z"),
        ("ToString(true)", "true"),
        ("ToString(missing)", "null"),
    ],
    eval: to_string,
    prepare: None,
};

fn to_string(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| {
        Ok(match item {
            Value::Str(s) => Value::Str(s),
            other => Value::Str(other.to_string()),
        })
    })
}

pub(super) const TO_INT: FunctionDef = FunctionDef {
    name: "ToInt",
    returns: Some(ValueType::Integer),
    signature: "ToInt(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as an integer: a string holding a decimal integer (surrounding spaces \
              allowed), a boolean as 1 or 0. Anything else is an error naming the value. \
              Elementwise; null stays null.",
    examples: &[
        ("ToInt(employeeId)", "42"),
        ("ToInt(\" -7 \") + 1", "-6"),
        ("ToInt(true)", "1"),
        ("ToInt(missing)", "null"),
        (
            "ToInt(\"12abc\")",
            "error: ToInt: \"12abc\" is not an integer",
        ),
    ],
    eval: to_int,
    prepare: None,
};

fn to_int(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| match item {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Bool(b) => Ok(Value::Int(i64::from(b))),
        Value::Str(s) => parse_int(&s)
            .map(Value::Int)
            .ok_or_else(|| FnError::bad_argument(format!("ToInt: \"{s}\" is not an integer"))),
        other => Err(FnError::bad_argument(format!(
            "ToInt: cannot convert {} to an integer",
            describe(&other)
        ))),
    })
}

pub(super) const TO_BOOL: FunctionDef = FunctionDef {
    name: "ToBool",
    returns: Some(ValueType::Boolean),
    signature: "ToBool(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value as a boolean: the strings true/false, yes/no, 1/0 (any case, spaces \
              allowed), integers (0 is false). Other strings are an error (use `==` or IIF for \
              truthiness). Elementwise; null stays null.",
    examples: &[
        ("ToBool(\"TRUE\")", "true"),
        ("ToBool(\" no \")", "false"),
        ("ToBool(userAccountControl)", "true"),
        ("ToBool(missing)", "null"),
        (
            "ToBool(\"maybe\")",
            "error: ToBool: \"maybe\" is not a boolean (true/false, yes/no, 1/0)",
        ),
    ],
    eval: to_bool,
    prepare: None,
};

fn to_bool(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| match item {
        Value::Bool(b) => Ok(Value::Bool(b)),
        Value::Int(i) => Ok(Value::Bool(i != 0)),
        Value::Str(s) => {
            let t = s.trim();
            if ["true", "yes", "1"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
            {
                Ok(Value::Bool(true))
            } else if ["false", "no", "0"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
            {
                Ok(Value::Bool(false))
            } else {
                Err(FnError::bad_argument(format!(
                    "ToBool: \"{s}\" is not a boolean (true/false, yes/no, 1/0)"
                )))
            }
        }
        other => Err(FnError::bad_argument(format!(
            "ToBool: cannot convert {} to a boolean",
            describe(&other)
        ))),
    })
}

pub(super) const TO_BASE64: FunctionDef = FunctionDef {
    name: "ToBase64",
    returns: Some(ValueType::String),
    signature: "ToBase64(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Standard base64 (with padding) of binary values as they are and of strings as \
              UTF-8; other values are converted to their string form first. Elementwise; null \
              stays null.",
    examples: &[
        ("ToBase64(givenName)", "Sm9zw6k="),
        ("ToBase64(objectGUID)", "eFY0EjQSeFaavN7wEjRWeA=="),
        ("ToBase64(\"\")", ""),
        ("ToBase64(missing)", "null"),
    ],
    eval: to_base64,
    prepare: None,
};

fn to_base64(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| {
        Ok(Value::Str(match &item {
            Value::Bytes(b) => STANDARD.encode(b),
            Value::Str(s) => STANDARD.encode(s),
            other => STANDARD.encode(other.to_string()),
        }))
    })
}

pub(super) const FROM_BASE64: FunctionDef = FunctionDef {
    name: "FromBase64",
    returns: None,
    signature: "FromBase64(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Decodes standard base64 (padding optional, surrounding spaces ignored): a string \
              when the bytes are UTF-8, binary otherwise. Invalid base64 is an error. \
              Elementwise; null stays null.",
    examples: &[
        ("FromBase64(\"Sm9zw6k=\")", "José"),
        ("FromBase64(\"Sm9zw6k\")", "José"),
        ("Count(FromBase64(\"/w==\"))", "1"),
        ("FromBase64(missing)", "null"),
        (
            "FromBase64(\"@@\")",
            "error: FromBase64: \"@@\" is not valid base64",
        ),
    ],
    eval: from_base64,
    prepare: None,
};

fn from_base64(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| match item {
        Value::Str(s) => match LENIENT.decode(s.trim()) {
            Ok(bytes) => Ok(match String::from_utf8(bytes) {
                Ok(text) => Value::Str(text),
                Err(not_utf8) => Value::Bytes(not_utf8.into_bytes()),
            }),
            Err(_) => Err(FnError::bad_argument(format!(
                "FromBase64: \"{s}\" is not valid base64"
            ))),
        },
        other => Err(FnError::bad_argument(format!(
            "FromBase64: expected a base64 string, found {}",
            describe(&other)
        ))),
    })
}

pub(super) const GUID_TO_IMMUTABLE_ID: FunctionDef = FunctionDef {
    name: "GuidToImmutableId",
    returns: Some(ValueType::String),
    signature: "GuidToImmutableId(guid)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The Entra ID ImmutableID (onPremisesImmutableId) of an AD objectGUID: base64 of \
              its 16 bytes in AD's order. Takes the binary objectGUID as AD returns it, or the \
              GUID's text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, braces and hyphens \
              optional), whose first three groups AD stores little-endian. Elementwise; null \
              stays null.",
    examples: &[
        ("GuidToImmutableId(objectGUID)", "eFY0EjQSeFaavN7wEjRWeA=="),
        (
            "GuidToImmutableId(\"12345678-1234-5678-9abc-def012345678\")",
            "eFY0EjQSeFaavN7wEjRWeA==",
        ),
        (
            "GuidToImmutableId(\"{0A5B0E5B-4E4F-4B1B-9C53-8A2B2C1D0E0F}\")",
            "Ww5bCk9OG0ucU4orLB0ODw==",
        ),
        ("GuidToImmutableId(missing)", "null"),
        (
            "GuidToImmutableId(\"not-a-guid\")",
            "error: GuidToImmutableId: \"not-a-guid\" is not a GUID",
        ),
    ],
    eval: guid_to_immutable_id,
    prepare: None,
};

fn guid_to_immutable_id(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |item| match &item {
        Value::Bytes(b) if b.len() == 16 => Ok(Value::Str(STANDARD.encode(b))),
        Value::Bytes(b) => Err(FnError::bad_argument(format!(
            "GuidToImmutableId: a GUID has 16 bytes, found {}",
            b.len()
        ))),
        Value::Str(s) => match guid_bytes(s) {
            Some(bytes) => Ok(Value::Str(STANDARD.encode(bytes))),
            None => Err(FnError::bad_argument(format!(
                "GuidToImmutableId: \"{s}\" is not a GUID"
            ))),
        },
        other => Err(FnError::bad_argument(format!(
            "GuidToImmutableId: expected binary or a GUID string, found {}",
            describe(other)
        ))),
    })
}

/// The 16 bytes of a GUID in its text form, in AD's (Windows) byte order:
/// the first three groups little-endian, the last two as written.
pub(super) fn guid_bytes(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let hex: Vec<u8> = if s.len() == 36 {
        let dashes_ok = s
            .char_indices()
            .all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
        if !dashes_ok {
            return None;
        }
        s.bytes().filter(|&b| b != b'-').collect()
    } else if s.len() == 32 {
        s.bytes().collect()
    } else {
        return None;
    };
    let mut bytes = [0u8; 16];
    for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        *out = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    Some(bytes)
}

pub(super) const BIT_AND: FunctionDef = FunctionDef {
    name: "BitAnd",
    returns: Some(ValueType::Integer),
    signature: "BitAnd(a, b)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The bitwise AND of two integers (numeric strings allowed), e.g. to test \
              userAccountControl flags. Null when either is null.",
    examples: &[
        ("BitAnd(userAccountControl, 2)", "2"),
        ("BitAnd(userAccountControl, 2) == 0", "false"),
        ("BitAnd(\"512\", 2)", "0"),
        ("BitAnd(missing, 2)", "null"),
    ],
    eval: bit_and,
    prepare: None,
};

fn bit_and(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    bitwise(args, "BitAnd", |a, b| a & b)
}

pub(super) const BIT_OR: FunctionDef = FunctionDef {
    name: "BitOr",
    returns: Some(ValueType::Integer),
    signature: "BitOr(a, b)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The bitwise OR of two integers (numeric strings allowed), e.g. to set \
              userAccountControl flags. Null when either is null.",
    examples: &[
        ("BitOr(512, 2)", "514"),
        ("BitOr(userAccountControl, 65536)", "66050"),
        ("BitOr(missing, 2)", "null"),
        (
            "BitOr(\"x\", 2)",
            "error: BitOr: a must be an integer, found \"x\"",
        ),
    ],
    eval: bit_or,
    prepare: None,
};

fn bit_or(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    bitwise(args, "BitOr", |a, b| a | b)
}

fn bitwise(args: &Args<'_, '_>, name: &str, op: fn(i64, i64) -> i64) -> Result<Value, FnError> {
    if args.get(0).is_null() || args.get(1).is_null() {
        return Ok(Value::Null);
    }
    let a = int_arg(args.get(0), name, "a")?;
    let b = int_arg(args.get(1), name, "b")?;
    Ok(Value::Int(op(a, b)))
}

#[cfg(test)]
mod tests {
    use super::guid_bytes;
    use crate::functions::tests::eval_str as eval;

    #[test]
    fn guid_text_forms() {
        let want = Some([
            0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34,
            0x56, 0x78,
        ]);
        assert_eq!(guid_bytes("12345678-1234-5678-9abc-def012345678"), want);
        assert_eq!(guid_bytes("{12345678-1234-5678-9ABC-DEF012345678}"), want);
        assert_eq!(guid_bytes("12345678123456789abcdef012345678"), want);
        assert_eq!(guid_bytes("12345678-1234-5678-9abc-def01234567g"), None);
        assert_eq!(guid_bytes("1234567-81234-5678-9abc-def012345678"), None);
        assert_eq!(guid_bytes("12345678-1234-5678-9abc-def0123456é"), None);
        assert_eq!(guid_bytes("+2345678-1234-5678-9abc-def012345678"), None);
        assert_eq!(guid_bytes(""), None);
    }

    #[test]
    fn conversion_edge_cases() {
        assert_eq!(
            eval("GuidToImmutableId(FromBase64(\"//79\"))"),
            "error: GuidToImmutableId: a GUID has 16 bytes, found 3"
        );
        assert_eq!(
            eval("GuidToImmutableId(5)"),
            "error: GuidToImmutableId: expected binary or a GUID string, found the integer 5"
        );
        assert_eq!(eval("ToBase64(FromBase64(\"/w==\"))"), "/w==");
        assert_eq!(eval("FromBase64(\"\")"), "");
        assert_eq!(eval("ToBase64(Split(\"a,b\", \",\"))"), "YQ==; Yg==");
        assert_eq!(
            eval("ToInt(Split(\"1,2\", \",\")) == Split(\"1,2\", \",\")"),
            "true"
        );
        assert_eq!(eval("Count(ToInt(Split(\"1,2\", \",\")))"), "2");
        assert_eq!(
            eval("ToInt(\"99999999999999999999\")"),
            "error: ToInt: \"99999999999999999999\" is not an integer"
        );
        assert_eq!(
            eval("ToInt(hireDate)"),
            "error: ToInt: cannot convert the date-time 2021-06-01T08:00:00Z to an integer"
        );
        assert_eq!(eval("ToBool(0)"), "false");
        assert_eq!(eval("ToBool(\"Yes\")"), "true");
        assert_eq!(eval("ToString(manager)"), "ref:7");
        assert_eq!(
            eval("ToString(proxyAddresses)"),
            "SMTP:jose.muller@contoso.com; smtp:jm@contoso.com"
        );
        assert_eq!(eval("BitAnd(-1, 255)"), "255");
        assert_eq!(
            eval("BitAnd(1, true)"),
            "error: BitAnd: b must be an integer, found the boolean true"
        );
    }
}
