//! The one timestamp parser every format goes through.
//!
//! CodeDeploy uses a different encoding on each channel: RFC 3339 in EventBridge
//! (`2016-06-30T22:06:31Z`), epoch seconds with a fraction in the API (JSON numbers)
//! and in the documented SNS sample (strings), and Java's `Date.toString()` in real SNS
//! messages (`Wed Aug 10 18:39:05 UTC 2016`). moto's API emits RFC 3339 strings. The
//! encodings cannot be confused with each other, so every field accepts all of them.

use std::sync::LazyLock;

use chrono::format::{self, Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDateTime};

use super::excerpt;
use super::json::Json;
use crate::domain::Millis;

/// 9999-12-31T23:59:59.999Z. Later values are garbage (or milliseconds sent where
/// seconds belong) and would overflow duration arithmetic downstream.
const MAX_MILLIS: Millis = 253_402_300_799_999;

/// Parses one timestamp value, a blank string giving none; the error is a human-readable detail.
pub(super) fn parse<M, S>(value: &Json<'_, M, S>) -> Result<Option<Millis>, String> {
    match value {
        Json::Number(n) => from_epoch_seconds(n.as_f64()).map(Some),
        Json::Str(s) => match trim(s) {
            "" => Ok(None),
            s => parse_str(s).map(Some),
        },
        other => Err(format!("expected a number or a string, found {}", other.kind())),
    }
}

/// `s.trim()`, without decoding characters when `s` starts and ends with visible
/// ASCII, as timestamps do.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

fn parse_str(s: &str) -> Result<Millis, String> {
    if is_decimal(s) {
        let seconds = s
            .parse::<f64>()
            .map_err(|_| format!("{} is not a number", excerpt(s)))?;
        return from_epoch_seconds(seconds);
    }
    // Nearly every timestamp has one of the shapes CodeDeploy sends, read here by
    // hand at a fraction of chrono's cost; chrono reads everything else.
    match parse_usual_shape(s.as_bytes()) {
        Some(millis) => in_range(millis),
        None => parse_with_chrono(s),
    }
}

/// `123` or `123.456`: checked by hand because `f64::from_str` also takes `inf`, `NaN`
/// and exponents, none of which is a timestamp.
fn is_decimal(s: &str) -> bool {
    let bytes = s.as_bytes();
    let whole_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let fraction_is_digits = match &bytes[whole_digits..] {
        [] => true,
        [b'.', fraction @ ..] => !fraction.is_empty() && fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    whole_digits > 0 && fraction_is_digits
}

fn from_epoch_seconds(seconds: f64) -> Result<Millis, String> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{seconds} is not a time after 1970"));
    }
    // Round rather than truncate: 1409764576.589 is 1409764576588.9999 in binary.
    let millis = (seconds * 1000.0).round();
    if millis > MAX_MILLIS as f64 {
        return Err(format!("{seconds} seconds is after the year 9999"));
    }
    // In range and integral, so the cast is exact.
    Ok(millis as Millis)
}

fn in_range(millis: Millis) -> Result<Millis, String> {
    if (0..=MAX_MILLIS).contains(&millis) {
        Ok(millis)
    } else {
        Err("outside the years 1970 to 9999".to_owned())
    }
}

/// RFC 3339 or a Java date, as chrono reads them.
fn parse_with_chrono(s: &str) -> Result<Millis, String> {
    let millis = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.timestamp_millis()
    } else if let Some(t) = parse_java_date(s) {
        t.and_utc().timestamp_millis()
    } else {
        return Err(format!(
            "{} is neither epoch seconds, RFC 3339 nor a Java date like \"Wed Aug 10 18:39:05 UTC 2016\"",
            excerpt(s)
        ));
    };
    in_range(millis)
}

/// `EEE MMM dd HH:mm:ss zzz yyyy`. Only UTC/GMT are accepted: a named zone such as
/// `PDT` is ambiguous, and CodeDeploy has only ever been seen sending UTC.
fn parse_java_date(s: &str) -> Option<NaiveDateTime> {
    let mut parts = s.split_whitespace();
    let (weekday, month, day, clock, zone, year) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some()
        || !(zone.eq_ignore_ascii_case("UTC") || zone.eq_ignore_ascii_case("GMT"))
    {
        return None;
    }
    let without_zone = format!("{weekday} {month} {day} {clock} {year}");
    // What `NaiveDateTime::parse_from_str` does, with the format parsed once.
    static FORMAT: LazyLock<Vec<Item<'static>>> =
        LazyLock::new(|| StrftimeItems::new("%a %b %d %H:%M:%S %Y").collect());
    let mut parsed = Parsed::new();
    format::parse(&mut parsed, &without_zone, FORMAT.iter()).ok()?;
    parsed.to_naive_datetime_with_offset(0).ok()
}

/// Milliseconds since 1970 (negative before) of a timestamp in exactly the shape
/// CodeDeploy writes it: RFC 3339 as `2016-08-10T19:12:12.411Z` (a fraction of one
/// to nine digits or none, `Z` or an offset such as `-07:00`), or a Java date as
/// `Wed Aug 10 18:39:05 UTC 2016`. `None` for anything else, valid or not, which is
/// left to [`parse_with_chrono`]; whatever this accepts, chrono reads the same.
fn parse_usual_shape(s: &[u8]) -> Option<Millis> {
    if s.first()?.is_ascii_digit() {
        usual_rfc3339(s)
    } else {
        usual_java_date(s)
    }
}

/// `2016-08-10T19:12:12.411Z`, `2019-05-03T14:23:12-07:00`.
fn usual_rfc3339(s: &[u8]) -> Option<Millis> {
    let (date_time, rest) = s.split_at_checked(19)?;
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1] = date_time else {
        return None;
    };
    let days = days_since_1970(number([y0, y1, y2, y3])?, number([m0, m1])?, number([d0, d1])?)?;
    let local = millis_at(days, number([h0, h1])?, number([i0, i1])?, number([s0, s1])?)?;
    let (fraction_millis, zone) = match rest {
        [b'.', rest @ ..] => fraction_millis(rest)?,
        _ => (0, rest),
    };
    let offset_minutes = match *zone {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h0, h1, b':', m0, m1] => {
            let (hours, minutes) = (number([h0, h1])?, number([m0, m1])?);
            // What chrono allows: RFC 3339 offsets are less than a day.
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = i64::from(hours * 60 + minutes);
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    Some(local + fraction_millis - offset_minutes * 60_000)
}

/// `Wed Aug 10 18:39:05 UTC 2016`.
fn usual_java_date(s: &[u8]) -> Option<Millis> {
    let &[w0, w1, w2, b' ', m0, m1, m2, b' ', d0, d1, b' ', h0, h1, b':', i0, i1, b':', s0, s1, b' ', z0, z1, z2, b' ', y0, y1, y2, y3] =
        s
    else {
        return None;
    };
    if !matches!(&[z0, z1, z2], b"UTC" | b"GMT") {
        return None;
    }
    // Counted from Thursday, the weekday of 1970-01-01.
    let weekday = match &[w0, w1, w2] {
        b"Thu" => 0,
        b"Fri" => 1,
        b"Sat" => 2,
        b"Sun" => 3,
        b"Mon" => 4,
        b"Tue" => 5,
        b"Wed" => 6,
        _ => return None,
    };
    let month = match &[m0, m1, m2] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let days = days_since_1970(number([y0, y1, y2, y3])?, month, number([d0, d1])?)?;
    // chrono rejects a date on the wrong weekday (1970-01-01 was a Thursday).
    if days.rem_euclid(7) != weekday {
        return None;
    }
    millis_at(days, number([h0, h1])?, number([i0, i1])?, number([s0, s1])?)
}

/// The value of `N` ASCII digits; `None` if any is not a digit.
fn number<const N: usize>(digits: [u8; N]) -> Option<u32> {
    digits.iter().try_fold(0, |value, &digit| digit.is_ascii_digit().then(|| value * 10 + u32::from(digit - b'0')))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, as chrono
/// counts them (Howard Hinnant's `days_from_civil`); `None` for a day the month lacks.
fn days_since_1970(year: u32, month: u32, day: u32) -> Option<i64> {
    let leap_year = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap_year => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) {
        return None;
    }
    // Years start on March 1st, so that the leap day ends them.
    let (year, month, day) = (i64::from(year) - i64::from(month <= 2), i64::from(month), i64::from(day));
    let (era, year_of_era) = (year.div_euclid(400), year.rem_euclid(400));
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Milliseconds since 1970 of a time of day in UTC `days` after 1970-01-01; `None`
/// for a leap second (left to chrono) or an impossible time.
fn millis_at(days: i64, hour: u32, minute: u32, second: u32) -> Option<Millis> {
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((days * 86_400 + i64::from(hour * 3600 + minute * 60 + second)) * 1000)
}

/// The whole milliseconds of the digits after a decimal point (chrono reads one to
/// nine of them), and what follows the digits.
#[inline]
fn fraction_millis(s: &[u8]) -> Option<(Millis, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let padded = s[..digits].iter().chain(b"00").take(3);
    let millis = padded.fold(0, |value, digit| value * 10 + Millis::from(digit - b'0'));
    Some((millis, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::Leaf;
    use chrono::{NaiveDate, NaiveDateTime};
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde::Deserialize;
    use serde_json::{json, Value};

    /// What a field holding `value` gives.
    fn parse(value: &Value) -> Result<Option<Millis>, String> {
        super::parse(&Leaf::deserialize(value).unwrap())
    }

    #[test]
    fn api_epoch_seconds_round_to_the_millisecond() {
        assert_eq!(parse(&json!(1409764576.589)), Ok(Some(1_409_764_576_589)));
        assert_eq!(parse(&json!(1408480721.9)), Ok(Some(1_408_480_721_900)));
        assert_eq!(parse(&json!(1556918686.65)), Ok(Some(1_556_918_686_650)));
        assert_eq!(parse(&json!(1446744188)), Ok(Some(1_446_744_188_000)));
        assert_eq!(parse(&json!(0)), Ok(Some(0)));
    }

    #[test]
    fn sns_epoch_strings() {
        assert_eq!(parse(&json!("1446744188.595")), Ok(Some(1_446_744_188_595)));
        assert_eq!(parse(&json!("1446744207")), Ok(Some(1_446_744_207_000)));
    }

    #[test]
    fn java_dates() {
        assert_eq!(
            parse(&json!("Wed Aug 10 18:39:05 UTC 2016")),
            Ok(Some(1_470_854_345_000))
        );
        assert_eq!(
            parse(&json!("Fri Oct 14 08:46:18 UTC 2022")),
            Ok(Some(1_665_737_178_000))
        );
        assert_eq!(
            parse(&json!("Thu Dec 13 20:23:06 GMT 2018")),
            Ok(Some(1_544_732_586_000))
        );
        assert!(parse(&json!("Fri Oct 14 08:46:18 PDT 2022")).is_err());
        assert!(parse(&json!("Fri Oct 14 08:46:18 UTC 2022 extra")).is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse(&json!("2016-06-30T22:06:31Z")), Ok(Some(1_467_324_391_000)));
        assert_eq!(
            parse(&json!("2016-08-10T19:12:12.411Z")),
            Ok(Some(1_470_856_332_411))
        );
        assert_eq!(
            parse(&json!("2019-05-03T14:23:12.162-07:00")),
            Ok(Some(1_556_918_592_162))
        );
    }

    #[test]
    fn absurd_values_are_rejected() {
        for bad in [
            json!(-1),
            json!(-0.5),
            json!(1e300),
            json!(253402300800.0),
            json!("yesterday"),
            json!("NaN"),
            json!("inf"),
            json!("1e9"),
            json!("-5"),
            json!("."),
            json!("12."),
            json!(".5"),
            json!("1.2.3"),
            json!("0000-01-01T00:00:00Z"),
            json!(true),
            json!([1]),
        ] {
            assert!(parse(&bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(parse(&json!(253402300799.999)), Ok(Some(MAX_MILLIS)));
    }

    #[test]
    fn blank_strings_are_no_timestamp() {
        for blank in ["", " ", "\t\r\n"] {
            assert_eq!(parse(&json!(blank)), Ok(None));
        }
    }

    /// Whatever the hand-written reader makes of `s`, chrono makes the same of it.
    fn assert_agrees_with_chrono(s: &str) {
        if let Some(millis) = parse_usual_shape(s.as_bytes()) {
            assert_eq!(in_range(millis), parse_with_chrono(s), "{s:?}");
        }
    }

    /// `s` has a usual shape, and the hand-written reader agrees with chrono on it.
    fn assert_read_by_hand(s: &str) {
        assert!(parse_usual_shape(s.as_bytes()).is_some(), "{s:?} is not read by hand");
        assert_agrees_with_chrono(s);
    }

    #[test]
    fn the_shapes_codedeploy_sends_are_read_by_hand() {
        for s in [
            "Wed Aug 10 18:39:05 UTC 2016",
            "Thu Dec 13 20:23:06 GMT 2018",
            "2016-06-30T22:06:31Z",
            "2016-08-10T19:12:12.411Z",
            "2019-05-03T14:23:12.162-07:00",
            "2025-01-01T00:00:05.4Z",
            "2025-01-01T00:00:05.123456789+02:00",
        ] {
            assert_read_by_hand(s);
        }
    }

    #[test]
    fn valid_edge_cases_are_read_by_hand() {
        for s in [
            "2016-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2400-02-29T12:00:00Z",
            "2016-04-30T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "2016-06-30T22:06:31+23:59",
            "2016-06-30T22:06:31-23:59",
            "Mon Feb 29 00:00:00 UTC 2016",
            "Tue Feb 29 00:00:00 UTC 2000",
            "Sun Dec 31 23:59:59 GMT 2000",
            "Thu Jan 01 00:00:00 UTC 1970",
        ] {
            assert_read_by_hand(s);
        }
    }

    #[test]
    fn edge_cases_agree_with_chrono() {
        for s in [
            // Leap years and the days around February 29th.
            "2016-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2100-02-29T12:00:00Z",
            "2015-02-29T12:00:00Z",
            "2016-02-30T00:00:00Z",
            "2016-04-31T00:00:00Z",
            "2016-12-31T23:59:59.999Z",
            "Mon Feb 29 00:00:00 UTC 2016",
            "Tue Feb 29 00:00:00 UTC 2000",
            "Mon Mar 01 00:00:00 UTC 2100",
            "Mon Feb 29 00:00:00 UTC 2100",
            // The ends of the accepted range, and just beyond them.
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:59:59.999+01:00",
            "1969-12-31T23:59:59.999Z",
            "1969-12-31T23:30:00-01:00",
            "9999-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59.999-00:01",
            "0000-01-01T00:00:00Z",
            "Thu Jan 01 00:00:00 UTC 1970",
            "Wed Dec 31 23:59:59 UTC 1969",
            "Fri Dec 31 23:59:59 UTC 9999",
            "Sat Jan 01 00:00:00 UTC 0000",
            // Offsets.
            "2016-06-30T22:06:31+02:00",
            "2016-06-30T22:06:31-00:00",
            "2016-06-30T22:06:31+23:59",
            "2016-06-30T22:06:31-23:59",
            "2016-06-30T22:06:31+24:00",
            "2016-06-30T22:06:31+05:60",
            "2016-06-30T22:06:31+0200",
            "2016-06-30T22:06:31+02",
            "2016-06-30T22:06:31",
            // Fractions of every length.
            "2016-06-30T22:06:31.Z",
            "2016-06-30T22:06:31.1Z",
            "2016-06-30T22:06:31.12Z",
            "2016-06-30T22:06:31.123Z",
            "2016-06-30T22:06:31.1234Z",
            "2016-06-30T22:06:31.123456789Z",
            "2016-06-30T22:06:31.1234567890Z",
            "2016-06-30T22:06:31.999999999999-07:00",
            // Times of day out of range, and leap seconds.
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2016-12-31T24:00:00Z",
            "2016-12-31T23:60:00Z",
            "Sat Dec 31 23:59:60 UTC 2016",
            "Sat Dec 31 24:00:00 UTC 2016",
            // Case, spelling and spacing chrono may accept.
            "2016-06-30t22:06:31z",
            "2016-06-30 22:06:31Z",
            "wed aug 10 18:39:05 utc 2016",
            "WED AUG 10 18:39:05 UTC 2016",
            "Wednesday August 10 18:39:05 UTC 2016",
            "Wed Aug 10 18:39:05 utc 2016",
            "Wed Aug  10 18:39:05 UTC 2016",
            "Wed Aug 10 18:39:05 UTC  2016",
            "Wed\tAug 10 18:39:05 UTC 2016",
            "Wed Aug 10 8:39:05 UTC 2016",
            "Wed Aug 1 18:39:05 UTC 2016",
            "Wed Aug 10 18:39:05 UTC 16",
            "Wed Aug 10 18:39:05 UTC 20160",
            "Wed Aug 10 18:39:05 PDT 2016",
            "Thu Aug 10 18:39:05 UTC 2016",
            "Wed Aug 10 18:39:05 UTC 2016 ",
            "Wed Aug 10 18:39:05 UTC",
            "Wed Aug 10 18:39:05Z 2016",
        ] {
            assert_agrees_with_chrono(s);
            assert_agrees_with_chrono(&format!(" {s}\n"));
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        for s in ["Wed Aug 10 18:39:05 UTC 2016", "2019-05-03T14:23:12.162-07:00"] {
            assert_eq!(parse(&json!(format!(" \t{s}\r\n"))), parse(&json!(s)));
        }
    }

    /// A valid time in the shapes CodeDeploy sends.
    fn usual_time() -> impl Strategy<Value = NaiveDateTime> {
        (0i32..=9999, 1u32..=12, 1u32..=31, 0u32..24, 0u32..60, 0u32..60).prop_filter_map(
            "no such day",
            |(year, month, day, hour, minute, second)| {
                NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)
            },
        )
    }

    fn usual_rfc3339() -> impl Strategy<Value = String> {
        let offset = prop_oneof![
            Just("Z".to_owned()),
            (select(vec!['+', '-']), 0u32..24, 0u32..60).prop_map(|(sign, h, m)| format!("{sign}{h:02}:{m:02}")),
        ];
        (usual_time(), "(\\.[0-9]{1,9})?", offset)
            .prop_map(|(time, fraction, offset)| format!("{}{fraction}{offset}", time.format("%Y-%m-%dT%H:%M:%S")))
    }

    fn usual_java_date() -> impl Strategy<Value = String> {
        (usual_time(), select(vec!["UTC", "GMT"]))
            .prop_map(|(time, zone)| time.format(&format!("%a %b %d %H:%M:%S {zone} %Y")).to_string())
    }

    /// `s` with one byte replaced, inserted or removed, or its case changed.
    fn near(s: String) -> impl Strategy<Value = String> {
        let bytes = select(b"0123456789 -+:.TtZzUuGg\tAaJjWw".to_vec());
        (0..s.len(), 0..5u8, bytes).prop_map(move |(at, edit, byte)| {
            let mut near = s.clone().into_bytes();
            match edit {
                0 => near[at] = byte,
                1 => near.insert(at, byte),
                2 => drop(near.remove(at)),
                3 => near.make_ascii_lowercase(),
                _ => near.make_ascii_uppercase(),
            }
            String::from_utf8(near).expect("ASCII in, ASCII out")
        })
    }

    /// Any time of day, day of the month and offset written in the usual shapes,
    /// impossible ones included.
    fn any_numbers() -> impl Strategy<Value = String> {
        let rfc3339 = (0u32..=9999, 0u32..=13, 0u32..=32, 0u32..=25, 0u32..=61, 0u32..=61, 0u32..=25, 0u32..=61)
            .prop_map(|(year, month, day, hour, minute, second, offset_hours, offset_minutes)| {
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}+{offset_hours:02}:{offset_minutes:02}")
            });
        let java = (0usize..7, 0usize..12, 0u32..=32, 0u32..=25, 0u32..=61, 0u32..=61, 0u32..=9999).prop_map(
            |(weekday, month, day, hour, minute, second, year)| {
                let weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][weekday];
                let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][month];
                format!("{weekday} {month} {day:02} {hour:02}:{minute:02}:{second:02} UTC {year:04}")
            },
        );
        prop_oneof![rfc3339, java]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn usual_shapes_are_read_by_hand_as_chrono_reads_them(
            s in prop_oneof![usual_rfc3339(), usual_java_date()],
        ) {
            assert_read_by_hand(&s);
        }

        #[test]
        fn near_misses_are_read_as_chrono_reads_them(
            s in prop_oneof![usual_rfc3339(), usual_java_date()].prop_flat_map(near),
        ) {
            assert_agrees_with_chrono(&s);
        }

        #[test]
        fn impossible_dates_and_times_are_read_as_chrono_reads_them(s in any_numbers()) {
            assert_agrees_with_chrono(&s);
        }
    }
}
