//! Date-time format strings in the two syntaxes the references use:
//! strftime (`%Y-%m-%d`, mvsync's own) and .NET custom formats
//! (`yyyy-MM-dd`, `yyyyMMddHHmmss.fZ`, as Entra's FormatDateTime takes).
//! A format holding `%` is strftime; any other is .NET.
//!
//! A .NET format is checked when it is compiled: it must hold at least one
//! date or time field, and a letter that is not a field (other than the
//! literal `T` and `Z`) is an error, so `YYYY-MM-DD` is refused instead of
//! being printed as text.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, Timelike, Utc};

/// One piece of a .NET format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Literal(String),
    /// A field letter and how many times it was repeated (`yyyy` is `('y', 4)`).
    Field(char, usize),
}

/// A compiled output format.
#[derive(Debug, Clone)]
pub(crate) enum Output {
    Strftime(Vec<Item<'static>>),
    DotNet(Vec<Token>),
}

const FIELDS: &str = "yMdHhmsfFtzK";

fn tokens(format: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let literal = |out: &mut Vec<Token>, s: &str| match out.last_mut() {
        Some(Token::Literal(l)) => l.push_str(s),
        _ => out.push(Token::Literal(s.to_owned())),
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .ok_or_else(|| format!("unterminated quoted text in date-time format \"{format}\""))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                literal(&mut out, &text);
                i += end + 2;
            }
            '\\' => {
                let next = chars
                    .get(i + 1)
                    .ok_or_else(|| format!("date-time format \"{format}\" ends with `\\`"))?;
                literal(&mut out, &next.to_string());
                i += 2;
            }
            c if FIELDS.contains(c) => {
                let run = chars[i..].iter().take_while(|&&d| d == c).count();
                if run > 9 {
                    return Err(format!(
                        "`{}` in date-time format \"{format}\" is longer than any .NET field",
                        c.to_string().repeat(run)
                    ));
                }
                out.push(Token::Field(c, run));
                i += run;
            }
            'T' | 'Z' => {
                literal(&mut out, &c.to_string());
                i += 1;
            }
            c if c.is_ascii_alphabetic() => {
                return Err(format!(
                    "`{c}` in date-time format \"{format}\" is not a .NET date-time field (years are yyyy, months MM, days dd, hours HH, minutes mm, seconds ss; quote literal text as 'text')"
                ))
            }
            c => {
                literal(&mut out, &c.to_string());
                i += 1;
            }
        }
    }
    if !out.iter().any(|t| matches!(t, Token::Field(..))) {
        return Err(format!(
            "date-time format \"{format}\" has no date or time field (a .NET format such as \"yyyy-MM-dd\", or strftime such as \"%Y-%m-%d\")"
        ));
    }
    Ok(out)
}

fn strftime(format: &str) -> Result<Vec<Item<'static>>, String> {
    StrftimeItems::new(format).parse_to_owned().map_err(|_| {
        format!("invalid date-time format \"{format}\" (strftime syntax, e.g. \"%Y-%m-%d\")")
    })
}

/// Compiles an output format.
pub(crate) fn output(format: &str) -> Result<Output, String> {
    if format.contains('%') {
        return strftime(format).map(Output::Strftime);
    }
    tokens(format).map(Output::DotNet)
}

/// Compiles an input format for parsing: .NET formats are translated to
/// strftime (a fraction after a `.` reads any number of digits).
pub(crate) fn input(format: &str) -> Result<Vec<Item<'static>>, String> {
    if format.contains('%') {
        return strftime(format);
    }
    let mut out = String::new();
    let toks = tokens(format)?;
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Token::Literal(l) => {
                let mut l = l.replace('%', "%%");
                // `.fff`: the dot belongs to the fraction (`%.f`).
                if l.ends_with('.') && matches!(toks.get(i + 1), Some(Token::Field('f' | 'F', _))) {
                    l.pop();
                }
                out.push_str(&l);
            }
            Token::Field(c, n) => out.push_str(match (c, n) {
                ('y', 1 | 2) => "%y",
                ('y', _) => "%Y",
                ('M', 1 | 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', 1 | 2) => "%d",
                ('d', 3) => "%a",
                ('d', _) => "%A",
                ('H', _) => "%H",
                ('h', _) => "%I",
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('f' | 'F', n) => {
                    if toks
                        .get(i.wrapping_sub(1))
                        .is_some_and(|t| matches!(t, Token::Literal(l) if l.ends_with('.')))
                    {
                        "%.f"
                    } else if *n <= 3 {
                        "%3f"
                    } else if *n <= 6 {
                        "%6f"
                    } else {
                        "%9f"
                    }
                }
                ('t', _) => "%p",
                ('z', 1 | 2) => "%#z",
                _ => "%:z",
            }),
        }
    }
    // `K` and `zzz` read `Z` as well as `+hh:mm`, as .NET does.
    Ok(strftime(&out)?
        .into_iter()
        .map(|item| match item {
            Item::Fixed(chrono::format::Fixed::TimezoneOffsetColon) => {
                Item::Fixed(chrono::format::Fixed::TimezoneOffsetColonZ)
            }
            other => other,
        })
        .collect())
}

impl Output {
    /// The date-time rendered in UTC.
    pub(crate) fn render(&self, dt: DateTime<Utc>) -> Result<String, ()> {
        use std::fmt::Write as _;
        let mut out = String::new();
        match self {
            Output::Strftime(items) => {
                write!(out, "{}", dt.format_with_items(items.iter())).map_err(|_| ())?
            }
            Output::DotNet(tokens) => {
                for (i, token) in tokens.iter().enumerate() {
                    match token {
                        Token::Literal(l) => {
                            // `.FFF` that shows no digit drops the dot too.
                            let no_digits = match tokens.get(i + 1) {
                                Some(Token::Field('F', n)) => {
                                    let digits = format!("{:09}", dt.nanosecond() % 1_000_000_000);
                                    digits[..(*n).min(9)].trim_end_matches('0').is_empty()
                                }
                                _ => false,
                            };
                            if no_digits && l.ends_with('.') {
                                out.push_str(&l[..l.len() - 1]);
                            } else {
                                out.push_str(l);
                            }
                        }
                        Token::Field(c, n) => field(&mut out, dt, *c, *n),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn field(out: &mut String, dt: DateTime<Utc>, c: char, n: usize) {
    use std::fmt::Write as _;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let hour12 = match dt.hour() % 12 {
        0 => 12,
        h => h,
    };
    let _ = match (c, n) {
        ('y', 1) => write!(out, "{}", dt.year() % 100),
        ('y', 2) => write!(out, "{:02}", dt.year() % 100),
        ('y', n) => write!(out, "{:0n$}", dt.year()),
        ('M', 1) => write!(out, "{}", dt.month()),
        ('M', 2) => write!(out, "{:02}", dt.month()),
        ('M', 3) => write!(out, "{}", &MONTHS[dt.month0() as usize][..3]),
        ('M', _) => write!(out, "{}", MONTHS[dt.month0() as usize]),
        ('d', 1) => write!(out, "{}", dt.day()),
        ('d', 2) => write!(out, "{:02}", dt.day()),
        ('d', 3) => write!(
            out,
            "{}",
            &DAYS[dt.weekday().num_days_from_monday() as usize][..3]
        ),
        ('d', _) => write!(
            out,
            "{}",
            DAYS[dt.weekday().num_days_from_monday() as usize]
        ),
        ('H', 1) => write!(out, "{}", dt.hour()),
        ('H', _) => write!(out, "{:02}", dt.hour()),
        ('h', 1) => write!(out, "{hour12}"),
        ('h', _) => write!(out, "{hour12:02}"),
        ('m', 1) => write!(out, "{}", dt.minute()),
        ('m', _) => write!(out, "{:02}", dt.minute()),
        ('s', 1) => write!(out, "{}", dt.second()),
        ('s', _) => write!(out, "{:02}", dt.second()),
        ('f' | 'F', n) => {
            let digits = format!("{:09}", dt.nanosecond() % 1_000_000_000);
            let mut part = digits[..n.min(9)].to_owned();
            if n > 9 {
                part.push_str(&"0".repeat(n - 9));
            }
            if c == 'F' {
                part = part.trim_end_matches('0').to_owned();
            }
            out.push_str(&part);
            Ok(())
        }
        ('t', 1) => write!(out, "{}", if dt.hour() < 12 { "A" } else { "P" }),
        ('t', _) => write!(out, "{}", if dt.hour() < 12 { "AM" } else { "PM" }),
        ('z', 1) => write!(out, "+0"),
        ('z', 2) => write!(out, "+00"),
        ('K', _) => write!(out, "Z"),
        _ => write!(out, "+00:00"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn dotnet_formats_render_as_dotnet_does() {
        let dt = at("2015-01-23T10:53:47.123Z");
        let render = |f: &str| output(f).and_then(|o| o.render(dt).map_err(|_| String::new()));
        assert_eq!(
            render("yyyyMMddHHmmss.fZ").as_deref(),
            Ok("20150123105347.1Z")
        );
        assert_eq!(render("yyyy-MM-dd").as_deref(), Ok("2015-01-23"));
        assert_eq!(
            render("M/d/yyyy h:mm:ss tt").as_deref(),
            Ok("1/23/2015 10:53:47 AM")
        );
        assert_eq!(render("dddd, MMMM d").as_deref(), Ok("Friday, January 23"));
        assert_eq!(
            render("yyyy-MM-ddTHH:mm:ss.FFFFFFFK").as_deref(),
            Ok("2015-01-23T10:53:47.123Z")
        );
        assert_eq!(render("'Year' yyyy").as_deref(), Ok("Year 2015"));
        let whole = at("2015-01-23T10:53:47Z");
        assert_eq!(
            output("ss.FFF")
                .and_then(|o| o.render(whole).map_err(|_| String::new()))
                .as_deref(),
            Ok("47")
        );
    }

    #[test]
    fn formats_that_would_print_themselves_are_refused() {
        assert!(output("YYYY-MM-DD").is_err_and(|e| e.contains("`Y`")));
        assert!(output("hello").is_err());
        assert!(output("'literal only'")
            .expect_err("no field")
            .contains("no date or time field"));
        assert!(output("%Y").is_ok());
    }

    #[test]
    fn dotnet_input_formats_parse() {
        let items = input("yyyyMMddHHmmss.fZ").unwrap_or_default();
        let mut parsed = chrono::format::Parsed::new();
        assert!(chrono::format::parse(&mut parsed, "20150123105347.1Z", items.iter()).is_ok());
        assert_eq!(
            parsed
                .to_naive_datetime_with_offset(0)
                .map(|d| d.to_string())
                .ok()
                .as_deref(),
            Some("2015-01-23 10:53:47.100")
        );
        let items = input("yyyy-MM-ddTHH:mm:ssK").unwrap_or_default();
        let mut parsed = chrono::format::Parsed::new();
        assert!(
            chrono::format::parse(&mut parsed, "2015-01-23T10:53:47Z", items.iter()).is_ok(),
            "K reads Z: {items:?}"
        );
        let items = input("yyyy-MM-ddzzz").unwrap_or_default();
        let mut parsed = chrono::format::Parsed::new();
        assert!(
            chrono::format::parse(&mut parsed, "2021-09-10-07:00", items.iter()).is_ok(),
            "{items:?}"
        );
    }
}
