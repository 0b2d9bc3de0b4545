//! Date-time functions: FormatDateTime, DateAdd, DateDiff, Now, CDate,
//! IsDate, DateFromNum and NumFromDate (AD's FILETIME).
//!
//! Date-times are instants in UTC. A string where a date-time is expected is
//! read as RFC 3339 (`2024-03-15T09:30:00Z`, any offset), as a UTC date-time
//! without offset (`2024-03-15T09:30:00`, `2024-03-15 09:30:00`), as a date
//! (`2024-03-15`, midnight UTC), or as LDAP generalized time
//! (`20240315093000.0Z`, as AD's whenCreated).

use chrono::format::{Item, Parsed};
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use super::datefmt;
use super::util::{describe, int_arg, map_items};
use super::{Args, FnError, FunctionDef, PrepareError, Prepared};
use crate::{Env, Value, ValueType};

/// Reads a date-time string in one of the accepted shapes (see the module
/// documentation) as microseconds since the epoch.
pub(crate) fn parse_datetime_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    const NAIVE: [&str; 7] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%d%H%M%S%.fZ",
        // The en-US forms the Entra pages print (`8/25/2021 5:41:18 PM`).
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%Y-%m-%d %I:%M %p",
    ];
    for format in NAIVE {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    // An hours-only offset after a time, as Entra Connect's CDate example
    // (`2013-01-10 4:00 PM -8`).
    if let Some((time, hours)) = s.rsplit_once(' ') {
        let offset = hours
            .strip_prefix(['+', '-'])
            .filter(|d| (1..=2).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|_| hours.parse::<i64>().ok())
            .filter(|h| h.abs() <= 14);
        if let Some(h) = offset {
            // The time itself in one of the plain forms (no recursion).
            for format in NAIVE {
                if let Ok(dt) = NaiveDateTime::parse_from_str(time.trim(), format) {
                    return dt
                        .and_utc()
                        .timestamp_micros()
                        .checked_sub(h * 3_600_000_000);
                }
            }
        }
    }
    for format in ["%m/%d/%Y", "%Y-%m-%d"] {
        if let Ok(date) = NaiveDate::parse_from_str(s, format) {
            return Some(
                date.and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    .timestamp_micros(),
            );
        }
    }
    // A date with an offset, as Workday and SuccessFactors send hire
    // dates: `2012-03-16-07:00` is midnight at UTC-7.
    if s.len() > 10 && s.is_char_boundary(10) {
        let (date, offset) = s.split_at(10);
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let offset = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{offset}")).ok()?;
        let local = date.and_time(chrono::NaiveTime::MIN);
        return Some(
            (local - TimeDelta::seconds(i64::from(offset.offset().local_minus_utc())))
                .and_utc()
                .timestamp_micros(),
        );
    }
    None
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
    // A date alone is midnight, at its offset when it has one.
    let date = parsed.to_naive_date().ok()?;
    let offset_us = i64::from(parsed.offset.unwrap_or(0)) * 1_000_000;
    Some(
        date.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros()
            - offset_us,
    )
}

fn format_text(format: &Value) -> Result<String, String> {
    match format {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "a date-time format must be a string, found {}",
            describe(other)
        )),
    }
}

fn input_format(format: &Value) -> Result<Vec<Item<'static>>, String> {
    datefmt::input(&format_text(format)?)
}

fn output_format(format: &Value) -> Result<datefmt::Output, String> {
    datefmt::output(&format_text(format)?)
}

/// FormatDateTime's formats, compiled at parse time when they are literals.
struct Formats {
    input: Option<Vec<Item<'static>>>,
    output: Option<datefmt::Output>,
}

pub(super) const FORMAT_DATE_TIME: FunctionDef = FunctionDef {
    name: "FormatDateTime",
    returns: Some(ValueType::String),
    signature: "FormatDateTime(value, [[dateTimeStyles,] inputFormat,] outputFormat)",
    min_args: 2,
    max_args: Some(4),
    pairs: false,
    summary: "The date-time rendered in UTC with a format: a .NET custom format as Entra \
              writes them (`yyyy-MM-dd`, `yyyyMMddHHmmss.fZ` for LDAP generalized time) or, when \
              it holds `%`, strftime (`%Y-%m-%d`, `%s` for Unix seconds). The value is a \
              date-time or a string read as an RFC 3339 date-time, a date (also with an offset, \
              `2012-03-16-07:00`), or generalized time; with an `inputFormat` the string is read \
              with it instead (no offset means UTC, no time means midnight). Entra's four-argument \
              form `FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat)` is \
              accepted (`dateTimeStyles` may be left empty). Literal formats are checked at \
              parse time: a format with no date or time field, or a letter that is not one \
              (`YYYY`), is an error, never printed as text. Elementwise; null stays null.",
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
            "FormatDateTime(\"20150123105347.1Z\", , \"yyyyMMddHHmmss.fZ\", \"yyyy-MM-dd\")",
            "2015-01-23",
        ),
        (
            "FormatDateTime(\"2021-09-10-07:00\", , \"yyyy-MM-ddzzz\", \"yyyyMMddHHmmss.fZ\")",
            "20210910070000.0Z",
        ),
        (
            "FormatDateTime(hireDate, \"M/d/yyyy h:mm tt\")",
            "6/1/2021 8:00 AM",
        ),
        (
            "FormatDateTime(\"soon\", \"%Y\")",
            "error: FormatDateTime: cannot read \"soon\" as a date-time",
        ),
    ],
    eval: format_date_time,
    prepare: Some(prepare_format_date_time),
};

fn format_positions(argc: usize) -> (Option<usize>, usize) {
    match argc {
        4 => (Some(2), 3),
        3 => (Some(1), 2),
        _ => (None, 1),
    }
}

fn prepare_format_date_time(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    let (input_at, output_at) = format_positions(constants.len());
    let bad = |at: usize| {
        move |message| PrepareError {
            arg: Some(at),
            code: "bad-format",
            message,
        }
    };
    let constant = |at: usize| constants.get(at).copied().flatten();
    let formats = Formats {
        input: match input_at.and_then(|at| constant(at).map(|f| (at, f))) {
            Some((at, f)) => Some(input_format(f).map_err(bad(at))?),
            None => None,
        },
        output: match constant(output_at) {
            Some(f) => Some(output_format(f).map_err(bad(output_at))?),
            None => None,
        },
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
    let output: &datefmt::Output = match prepared.and_then(|f| f.output.as_ref()) {
        Some(output) => output,
        None => {
            dynamic_output = output_format(args.get(output_at)).map_err(bad_format)?;
            &dynamic_output
        }
    };
    let dynamic_input;
    let input: Option<&[Item<'static>]> = match input_at {
        None => None,
        Some(at) => match prepared.and_then(|f| f.input.as_deref()) {
            Some(items) => Some(items),
            None => {
                dynamic_input = input_format(args.get(at)).map_err(bad_format)?;
                Some(&dynamic_input)
            }
        },
    };
    map_items(value, |item| {
        let dt = to_utc(instant(&item, input, "FormatDateTime")?, "FormatDateTime")?;
        let out = output
            .render(dt)
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

pub(super) const CDATE: FunctionDef = FunctionDef {
    name: "CDate",
    returns: Some(ValueType::DateTime),
    signature: "CDate(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The string read as a date-time in UTC: RFC 3339 with any offset, a date with an \
              offset as Workday and SuccessFactors send it (`2012-03-16-07:00` is 07:00 UTC), a \
              bare date or date-time (UTC), or generalized time. A string it cannot read is an \
              error. Elementwise; null stays null.",
    examples: &[
        ("CDate(\"2012-03-16-07:00\")", "2012-03-16T07:00:00Z"),
        (
            "CDate(\"2012-03-16T07:00:00+01:00\")",
            "2012-03-16T06:00:00Z",
        ),
        ("CDate(\"20240315093000.0Z\")", "2024-03-15T09:30:00Z"),
        ("CDate(\"8/25/2021 5:41:18 PM\")", "2021-08-25T17:41:18Z"),
        ("CDate(\"2013-01-10 4:00 PM -8\")", "2013-01-11T00:00:00Z"),
        (
            "CDate(\"soon\")",
            "error: CDate: cannot read \"soon\" as a date-time",
        ),
        ("CDate(missing)", "null"),
    ],
    eval: cdate,
    prepare: None,
};

fn cdate(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| {
        Ok(Value::DateTime(instant(&v, None, "CDate")?))
    })
}

pub(super) const IS_DATE: FunctionDef = FunctionDef {
    name: "IsDate",
    returns: Some(ValueType::Boolean),
    signature: "IsDate(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Whether the value is a date-time or a string CDate can read. False for null.",
    examples: &[
        ("IsDate(\"2012-03-16-07:00\")", "true"),
        ("IsDate(hireDate)", "true"),
        ("IsDate(\"soon\")", "false"),
        ("IsDate(missing)", "false"),
    ],
    eval: is_date,
    prepare: None,
};

fn is_date(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(match args.get(0) {
        Value::DateTime(_) => true,
        Value::Str(s) => parse_datetime_str(s).is_some(),
        _ => false,
    }))
}

pub(super) const DATE_DIFF: FunctionDef = FunctionDef {
    name: "DateDiff",
    returns: Some(ValueType::Integer),
    signature: "DateDiff(interval, date1, date2)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "How many interval boundaries lie from `date1` to `date2` (negative when `date2` \
              is earlier), as VBScript counts them: days are midnights crossed (in UTC), weeks \
              are Sundays, months, quarters and years are calendar boundaries. DateAdd's \
              intervals. Either date null gives null.",
    examples: &[
        ("DateDiff(\"d\", \"2024-03-01\", \"2024-03-15\")", "14"),
        ("DateDiff(\"d\", Now(), \"2024-03-01\")", "-14"),
        ("DateDiff(\"m\", \"2023-12-31\", \"2024-01-01\")", "1"),
        ("DateDiff(\"yyyy\", hireDate, Now())", "3"),
        (
            "DateDiff(\"h\", \"2024-03-15T00:00:00Z\", \"2024-03-15T09:59:00Z\")",
            "9",
        ),
        ("DateDiff(\"d\", missing, Now())", "null"),
    ],
    eval: date_diff,
    prepare: Some(prepare_date_add),
};

fn date_diff(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let name = args
        .get(0)
        .as_str()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if interval(&name).is_none() {
        return Err(FnError::bad_argument(format!(
            "DateDiff: {}",
            interval_error(args.get(0))
        )));
    }
    if args.get(1).is_null() || args.get(2).is_null() {
        return Ok(Value::Null);
    }
    let a = to_utc(instant(args.get(1), None, "DateDiff")?, "DateDiff")?;
    let b = to_utc(instant(args.get(2), None, "DateDiff")?, "DateDiff")?;
    // VBScript counts the boundaries crossed: a day from 23:00 to 01:00 the
    // next morning is one day, weeks begin on Sunday.
    use chrono::Datelike as _;
    let months = |d: &DateTime<Utc>| i64::from(d.year()) * 12 + i64::from(d.month0());
    let floor = |d: &DateTime<Utc>, unit_us: i64, shift_us: i64| {
        (d.timestamp_micros() + shift_us).div_euclid(unit_us)
    };
    const DAY: i64 = 86_400_000_000;
    Ok(Value::Int(match name.as_str() {
        "yyyy" | "year" | "years" => i64::from(b.year()) - i64::from(a.year()),
        "q" | "quarter" | "quarters" => months(&b).div_euclid(3) - months(&a).div_euclid(3),
        "m" | "month" | "months" => months(&b) - months(&a),
        // 1970-01-01 was a Thursday: four days after a Sunday.
        "ww" | "week" | "weeks" => floor(&b, 7 * DAY, 4 * DAY) - floor(&a, 7 * DAY, 4 * DAY),
        "h" | "hour" | "hours" => floor(&b, 3_600_000_000, 0) - floor(&a, 3_600_000_000, 0),
        "n" | "minute" | "minutes" => floor(&b, 60_000_000, 0) - floor(&a, 60_000_000, 0),
        "s" | "second" | "seconds" => floor(&b, 1_000_000, 0) - floor(&a, 1_000_000, 0),
        // VBScript's "w": whole seven-day periods.
        "w" => (floor(&b, DAY, 0) - floor(&a, DAY, 0)) / 7,
        _ => floor(&b, DAY, 0) - floor(&a, DAY, 0),
    }))
}

/// Microseconds between 1601-01-01 (FILETIME's epoch) and 1970-01-01.
const FILETIME_EPOCH_US: i64 = 11_644_473_600_000_000;

pub(super) const DATE_FROM_NUM: FunctionDef = FunctionDef {
    name: "DateFromNum",
    returns: Some(ValueType::DateTime),
    signature: "DateFromNum(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "An AD FILETIME (100-nanosecond intervals since 1601-01-01 UTC, as accountExpires, \
              lastLogonTimestamp and pwdLastSet hold them) as a date-time. 0 and \
              9223372036854775807 (never) give null. Elementwise; null stays null.",
    examples: &[
        ("DateFromNum(129699324000000000)", "2012-01-01T23:00:00Z"),
        (
            "DateFromNum(\"133575606000000000\")",
            "2024-04-14T09:30:00Z",
        ),
        ("DateFromNum(9223372036854775807)", "null"),
        ("DateFromNum(0)", "null"),
        ("DateFromNum(missing)", "null"),
    ],
    eval: date_from_num,
    prepare: None,
};

fn date_from_num(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| {
        let ticks = int_arg(&v, "DateFromNum", "value")?;
        if ticks == 0 || ticks == i64::MAX {
            return Ok(Value::Null);
        }
        Ok(Value::DateTime(ticks / 10 - FILETIME_EPOCH_US))
    })
}

pub(super) const NUM_FROM_DATE: FunctionDef = FunctionDef {
    name: "NumFromDate",
    returns: Some(ValueType::Integer),
    signature: "NumFromDate(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "A date-time as an AD FILETIME (100-nanosecond intervals since 1601-01-01 UTC), for \
              accountExpires. Strings are read as CDate does. Elementwise; null stays null.",
    examples: &[
        (
            "NumFromDate(\"2012-01-01T23:00:00Z\")",
            "129699324000000000",
        ),
        (
            "NumFromDate(DateAdd(\"d\", 30, Now()))",
            "133575606000000000",
        ),
        ("NumFromDate(missing)", "null"),
    ],
    eval: num_from_date,
    prepare: None,
};

fn num_from_date(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_items(args.take(0), |v| {
        let us = instant(&v, None, "NumFromDate")?;
        us.checked_add(FILETIME_EPOCH_US)
            .and_then(|t| t.checked_mul(10))
            .map(Value::Int)
            .ok_or_else(|| FnError::bad_argument("NumFromDate: the date-time is out of range"))
    })
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

    #[test]
    fn hostile_date_strings_neither_recurse_nor_overflow() {
        let spaces = format!("{}x", " ".repeat(200_000));
        assert_eq!(parse_datetime_str(&spaces), None);
        assert_eq!(parse_datetime_str("2013-01-10 4:00 PM +9999999999"), None);
        assert_eq!(parse_datetime_str("2013-01-10 4:00 PM +99"), None);
        assert!(parse_datetime_str("2013-01-10 4:00 PM -8").is_some());
        assert!(Expr::parse("FormatDateTime(Now(), \"yyyyyyyyyy\")").is_err());
    }
}
