//! Date-time functions: FormatDateTime, DateAdd, Now.
//!
//! Date-times are instants in UTC. A string where a date-time is expected is
//! read as RFC 3339 (`2024-03-15T09:30:00Z`, any offset), as a UTC date-time
//! without offset (`2024-03-15T09:30:00`, `2024-03-15 09:30:00`), as a date
//! (`2024-03-15`, midnight UTC), or as LDAP generalized time
//! (`20240315093000.0Z`, as AD's whenCreated).

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use super::util::{describe, map_items};
use super::{Args, FnError, FunctionDef, PrepareError, Prepared};
use crate::{Env, Value, ValueType};

/// Reads a date-time string in one of the accepted shapes (see the module
/// documentation) as microseconds since the epoch.
pub(crate) fn parse_datetime_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    const NAIVE: [&str; 3] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%d%H%M%S%.fZ",
    ];
    for format in NAIVE {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros()
    })
}

fn to_utc(micros: i64, function: &str) -> Result<DateTime<Utc>, FnError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        FnError::bad_argument(format!("{function}: date-time {micros}µs is out of range"))
    })
}

/// The instant a date-time argument stands for; strings are read with
/// `input` when given, else in the accepted shapes.
fn instant(value: &Value, input: Option<&[Item<'static>]>, function: &str) -> Result<i64, FnError> {
    match value {
        Value::DateTime(us) => Ok(*us),
        Value::Str(s) => match input {
            Some(items) => parse_with(s, items),
            None => parse_datetime_str(s),
        }
        .ok_or_else(|| {
            FnError::bad_argument(format!("{function}: cannot read \"{s}\" as a date-time"))
        }),
        other => Err(FnError::bad_argument(format!(
            "{function}: expected a date-time or a string, found {}",
            describe(other)
        ))),
    }
}

/// Parses with explicit format items: a full date-time with an offset, or
/// without one (UTC), or a bare date (midnight UTC).
fn parse_with(s: &str, items: &[Item<'static>]) -> Option<i64> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    if let Ok(dt) = parsed.to_datetime() {
        return Some(dt.timestamp_micros());
    }
    if let Ok(dt) = parsed.to_naive_datetime_with_offset(0) {
        return Some(dt.and_utc().timestamp_micros());
    }
    let date = parsed.to_naive_date().ok()?;
    Some(
        date.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros(),
    )
}

fn format_items(format: &Value) -> Result<Vec<Item<'static>>, String> {
    match format {
        Value::Str(s) => StrftimeItems::new(s).parse_to_owned().map_err(|_| {
            format!("invalid date-time format \"{s}\" (strftime syntax, e.g. \"%Y-%m-%d\")")
        }),
        other => Err(format!(
            "a date-time format must be a string, found {}",
            describe(other)
        )),
    }
}

/// FormatDateTime's formats, compiled at parse time when they are literals.
struct Formats {
    input: Option<Vec<Item<'static>>>,
    output: Option<Vec<Item<'static>>>,
}

pub(super) const FORMAT_DATE_TIME: FunctionDef = FunctionDef {
    name: "FormatDateTime",
    returns: Some(ValueType::String),
    signature: "FormatDateTime(value, [inputFormat,] outputFormat)",
    min_args: 2,
    max_args: Some(3),
    pairs: false,
    summary: "The date-time rendered in UTC with a strftime format (`%Y-%m-%d`, `%H:%M:%S`, \
              `%Y%m%d%H%M%S.0Z` for LDAP generalized time, `%s` for Unix seconds). The value is \
              a date-time or a string read as an RFC 3339 date-time, a date, or generalized \
              time; with three arguments the string is read with `inputFormat` instead (no \
              offset means UTC, no time means midnight). Literal formats are checked at parse \
              time. Elementwise; null stays null.",
    examples: &[
        ("FormatDateTime(hireDate, \"%Y-%m-%d\")", "2021-06-01"),
        (
            "FormatDateTime(Now(), \"%Y%m%d%H%M%S.0Z\")",
            "20240315093000.0Z",
        ),
        (
            "FormatDateTime(\"2024-02-29T23:00:00-02:00\", \"%d/%m/%Y %H:%M\")",
            "01/03/2024 01:00",
        ),
        (
            "FormatDateTime(\"31.12.2023\", \"%d.%m.%Y\", \"%Y-%m-%d\")",
            "2023-12-31",
        ),
        ("FormatDateTime(missing, \"%Y\")", "null"),
        (
            "FormatDateTime(\"soon\", \"%Y\")",
            "error: FormatDateTime: cannot read \"soon\" as a date-time",
        ),
    ],
    eval: format_date_time,
    prepare: Some(prepare_format_date_time),
};

fn format_positions(argc: usize) -> (Option<usize>, usize) {
    if argc == 3 {
        (Some(1), 2)
    } else {
        (None, 1)
    }
}

fn prepare_format_date_time(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    let (input_at, output_at) = format_positions(constants.len());
    let compile = |at: usize| -> Result<Option<Vec<Item<'static>>>, PrepareError> {
        constants
            .get(at)
            .copied()
            .flatten()
            .map(|format| {
                format_items(format).map_err(|message| PrepareError {
                    arg: Some(at),
                    code: "bad-format",
                    message,
                })
            })
            .transpose()
    };
    let formats = Formats {
        input: match input_at {
            Some(at) => compile(at)?,
            None => None,
        },
        output: compile(output_at)?,
    };
    Ok(if formats.input.is_none() && formats.output.is_none() {
        Prepared::none()
    } else {
        Prepared::new(formats)
    })
}

fn format_date_time(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let value = args.take(0);
    if value.is_null() {
        return Ok(Value::Null);
    }
    let (input_at, output_at) = format_positions(args.len());
    let prepared = args.prepared::<Formats>();
    let bad_format =
        |message: String| FnError::new("bad-format", format!("FormatDateTime: {message}"));
    let dynamic_output;
    let output: &[Item<'static>] = match prepared.and_then(|f| f.output.as_deref()) {
        Some(items) => items,
        None => {
            dynamic_output = format_items(args.get(output_at)).map_err(bad_format)?;
            &dynamic_output
        }
    };
    let dynamic_input;
    let input: Option<&[Item<'static>]> = match input_at {
        None => None,
        Some(at) => match prepared.and_then(|f| f.input.as_deref()) {
            Some(items) => Some(items),
            None => {
                dynamic_input = format_items(args.get(at)).map_err(bad_format)?;
                Some(&dynamic_input)
            }
        },
    };
    map_items(value, |item| {
        let dt = to_utc(instant(&item, input, "FormatDateTime")?, "FormatDateTime")?;
        let mut out = String::new();
        use std::fmt::Write as _;
        write!(out, "{}", dt.format_with_items(output.iter()))
            .map_err(|_| bad_format("the format cannot be applied to this date-time".to_owned()))?;
        Ok(Value::Str(out))
    })
}

/// A DateAdd interval.
#[derive(Clone, Copy)]
enum Interval {
    Months(i64),
    Duration(fn(i64) -> Option<TimeDelta>),
}

fn interval(name: &str) -> Option<Interval> {
    Some(match name.to_ascii_lowercase().as_str() {
        "yyyy" | "year" | "years" => Interval::Months(12),
        "q" | "quarter" | "quarters" => Interval::Months(3),
        "m" | "month" | "months" => Interval::Months(1),
        "y" | "d" | "w" | "day" | "days" => Interval::Duration(TimeDelta::try_days),
        "ww" | "week" | "weeks" => Interval::Duration(TimeDelta::try_weeks),
        "h" | "hour" | "hours" => Interval::Duration(TimeDelta::try_hours),
        "n" | "minute" | "minutes" => Interval::Duration(TimeDelta::try_minutes),
        "s" | "second" | "seconds" => Interval::Duration(TimeDelta::try_seconds),
        _ => return None,
    })
}

fn interval_error(found: &Value) -> String {
    format!(
        "unknown interval {}: use yyyy, q, m (months), d, ww, h, n (minutes) or s",
        describe(found)
    )
}

pub(super) const DATE_ADD: FunctionDef = FunctionDef {
    name: "DateAdd",
    returns: Some(ValueType::DateTime),
    signature: "DateAdd(interval, number, value)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "The date-time moved by `number` intervals (negative moves back). Intervals, as in \
              Entra ID and VBScript, case-insensitive: `yyyy` years, `q` quarters, `m` months, \
              `d` (also `y`, `w`) days, `ww` weeks, `h` hours, `n` minutes, `s` seconds; the \
              words `years`, `months`, `days`, `weeks`, `hours`, `minutes`, `seconds` also work. \
              Adding months keeps the day, clamped to the month's end. The value is a date-time \
              or a string read as FormatDateTime does. A null number or value gives null.",
    examples: &[
        (
            "FormatDateTime(DateAdd(\"d\", 30, hireDate), \"%Y-%m-%d\")",
            "2021-07-01",
        ),
        ("DateAdd(\"m\", 1, \"2024-01-31\")", "2024-02-29T00:00:00Z"),
        ("DateAdd(\"yyyy\", -1, Now())", "2023-03-15T09:30:00Z"),
        (
            "DateAdd(\"n\", 90, \"2024-03-15T23:00:00Z\")",
            "2024-03-16T00:30:00Z",
        ),
        ("DateAdd(\"d\", 1, missing)", "null"),
    ],
    eval: date_add,
    prepare: Some(prepare_date_add),
};

fn prepare_date_add(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    match constants.first().copied().flatten() {
        Some(name) => match name.as_str().and_then(interval) {
            Some(found) => Ok(Prepared::new(found)),
            None => Err(PrepareError {
                arg: Some(0),
                code: "bad-argument",
                message: interval_error(name),
            }),
        },
        None => Ok(Prepared::none()),
    }
}

fn date_add(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let unit = match args.prepared::<Interval>() {
        Some(unit) => *unit,
        None => args.get(0).as_str().and_then(interval).ok_or_else(|| {
            FnError::bad_argument(format!("DateAdd: {}", interval_error(args.get(0))))
        })?,
    };
    if args.get(1).is_null() {
        return Ok(Value::Null);
    }
    let number = super::util::int_arg(args.get(1), "DateAdd", "number")?;
    let value = args.get(2);
    if value.is_null() {
        return Ok(Value::Null);
    }
    let start = to_utc(instant(value, None, "DateAdd")?, "DateAdd")?;
    let out_of_range = || FnError::bad_argument("DateAdd: the result is out of range");
    let moved = match unit {
        Interval::Months(factor) => {
            let months = number.checked_mul(factor).ok_or_else(out_of_range)?;
            let count = u32::try_from(months.unsigned_abs()).map_err(|_| out_of_range())?;
            if months >= 0 {
                start.checked_add_months(Months::new(count))
            } else {
                start.checked_sub_months(Months::new(count))
            }
        }
        Interval::Duration(make) => make(number).and_then(|delta| start.checked_add_signed(delta)),
    }
    .ok_or_else(out_of_range)?;
    Ok(Value::DateTime(moved.timestamp_micros()))
}

pub(super) const NOW: FunctionDef = FunctionDef {
    name: "Now",
    returns: Some(ValueType::DateTime),
    signature: "Now()",
    min_args: 0,
    max_args: Some(0),
    pairs: false,
    summary: "The current instant, from the run's clock (fixed for a whole run, so every \
              object of a run sees the same time).",
    examples: &[
        ("Now()", "2024-03-15T09:30:00Z"),
        ("FormatDateTime(Now(), \"%Y\")", "2024"),
    ],
    eval: now,
    prepare: None,
};

fn now(_: &mut Args<'_, '_>, env: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::DateTime(env.now()))
}

#[cfg(test)]
mod tests {
    use super::parse_datetime_str;
    use crate::functions::tests::eval_str as eval;
    use crate::Expr;

    #[test]
    fn accepted_date_time_shapes() {
        let noon = Some(1_710_504_000_000_000); // 2024-03-15T12:00:00Z
        assert_eq!(parse_datetime_str("2024-03-15T12:00:00Z"), noon);
        assert_eq!(parse_datetime_str("2024-03-15T13:00:00+01:00"), noon);
        assert_eq!(parse_datetime_str("2024-03-15T12:00:00"), noon);
        assert_eq!(parse_datetime_str(" 2024-03-15 12:00:00.000 "), noon);
        assert_eq!(parse_datetime_str("20240315120000.0Z"), noon);
        assert_eq!(parse_datetime_str("20240315120000Z"), noon);
        assert_eq!(
            parse_datetime_str("2024-03-15"),
            Some(1_710_460_800_000_000)
        );
        assert_eq!(parse_datetime_str("15/03/2024"), None);
        assert_eq!(parse_datetime_str(""), None);
        assert_eq!(parse_datetime_str("2024-02-30"), None);
    }

    #[test]
    fn literal_formats_and_intervals_are_checked_at_parse_time() {
        let err = Expr::parse("FormatDateTime(x, \"%Q\")").expect_err("an error");
        assert_eq!((err.code, err.span), ("bad-format", 18..22));
        let err = Expr::parse("FormatDateTime(x, \"%d\", 5)").expect_err("an error");
        assert_eq!((err.code, err.span), ("bad-format", 24..25));
        let err = Expr::parse("DateAdd(\"fortnight\", 1, x)").expect_err("an error");
        assert_eq!((err.code, err.span), ("bad-argument", 8..19));
        assert!(err.message.contains("unknown interval"), "{}", err.message);
    }

    #[test]
    fn dynamic_formats_and_intervals() {
        assert_eq!(
            eval("FormatDateTime(hireDate, Join(\"-\", \"%Y\", \"%m\"))"),
            "2021-06"
        );
        assert_eq!(
            eval("FormatDateTime(hireDate, Join(\"\", \"%\", \"Q\"))"),
            "error: FormatDateTime: invalid date-time format \"%Q\" (strftime syntax, e.g. \"%Y-%m-%d\")"
        );
        assert_eq!(
            eval("DateAdd(Lower(\"WW\"), 1, \"2024-01-01\")"),
            "2024-01-08T00:00:00Z"
        );
        assert!(eval("DateAdd(Lower(\"X\"), 1, \"2024-01-01\")")
            .starts_with("error: DateAdd: unknown interval"));
    }

    #[test]
    fn date_edge_cases() {
        assert_eq!(
            eval("DateAdd(\"m\", -1, \"2024-03-31\")"),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            eval("DateAdd(\"q\", 1, \"2023-11-30\")"),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            eval("DateAdd(\"s\", 1, \"2024-12-31T23:59:59Z\")"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(eval("DateAdd(\"d\", null, hireDate)"), "null");
        assert_eq!(
            eval("DateAdd(\"d\", \"2\", \"2024-01-01\")"),
            "2024-01-03T00:00:00Z"
        );
        assert_eq!(
            eval("DateAdd(\"yyyy\", 9223372036854775807, hireDate)"),
            "error: DateAdd: the result is out of range"
        );
        assert_eq!(
            eval("DateAdd(\"d\", 9223372036854775807, hireDate)"),
            "error: DateAdd: the result is out of range"
        );
        assert_eq!(
            eval("DateAdd(\"d\", 1, 5)"),
            "error: DateAdd: expected a date-time or a string, found the integer 5"
        );
        assert_eq!(
            eval("FormatDateTime(Split(\"2024-01-01,2024-02-01\", \",\"), \"%m\")"),
            "01; 02"
        );
        assert_eq!(
            eval("FormatDateTime(\"2024-03-15 10:00\", \"%Y-%m-%d %H:%M\", \"%H\")"),
            "10"
        );
        assert_eq!(
            eval("FormatDateTime(\"x\", \"%d\", \"%Y\")"),
            "error: FormatDateTime: cannot read \"x\" as a date-time"
        );
        assert_eq!(eval("FormatDateTime(hireDate, \"%s\")"), "1622534400");
        assert_eq!(
            eval("FormatDateTime(hireDate, \"Année %Y ✓\")"),
            "Année 2021 ✓"
        );
    }
}
