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

/// Parses one timestamp value; the error is a human-readable detail.
pub(super) fn parse<M, S>(value: &Json<'_, M, S>) -> Result<Millis, String> {
    match value {
        Json::Number(n) => from_epoch_seconds(n.as_f64()),
        Json::Str(s) => parse_str(s.trim()),
        other => Err(format!("expected a number or a string, found {}", other.kind())),
    }
}

fn parse_str(s: &str) -> Result<Millis, String> {
    if is_decimal(s) {
        let seconds = s
            .parse::<f64>()
            .map_err(|_| format!("{} is not a number", excerpt(s)))?;
        return from_epoch_seconds(seconds);
    }
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

/// `123` or `123.456`: checked by hand because `f64::from_str` also takes `inf`, `NaN`
/// and exponents, none of which is a timestamp.
fn is_decimal(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::Leaf;
    use serde::Deserialize;
    use serde_json::{json, Value};

    /// What a field holding `value` gives.
    fn parse(value: &Value) -> Result<Millis, String> {
        super::parse(&Leaf::deserialize(value).unwrap())
    }

    #[test]
    fn api_epoch_seconds_round_to_the_millisecond() {
        assert_eq!(parse(&json!(1409764576.589)), Ok(1_409_764_576_589));
        assert_eq!(parse(&json!(1408480721.9)), Ok(1_408_480_721_900));
        assert_eq!(parse(&json!(1556918686.65)), Ok(1_556_918_686_650));
        assert_eq!(parse(&json!(1446744188)), Ok(1_446_744_188_000));
        assert_eq!(parse(&json!(0)), Ok(0));
    }

    #[test]
    fn sns_epoch_strings() {
        assert_eq!(parse(&json!("1446744188.595")), Ok(1_446_744_188_595));
        assert_eq!(parse(&json!("1446744207")), Ok(1_446_744_207_000));
    }

    #[test]
    fn java_dates() {
        assert_eq!(
            parse(&json!("Wed Aug 10 18:39:05 UTC 2016")),
            Ok(1_470_854_345_000)
        );
        assert_eq!(
            parse(&json!("Fri Oct 14 08:46:18 UTC 2022")),
            Ok(1_665_737_178_000)
        );
        assert_eq!(
            parse(&json!("Thu Dec 13 20:23:06 GMT 2018")),
            Ok(1_544_732_586_000)
        );
        assert!(parse(&json!("Fri Oct 14 08:46:18 PDT 2022")).is_err());
        assert!(parse(&json!("Fri Oct 14 08:46:18 UTC 2022 extra")).is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse(&json!("2016-06-30T22:06:31Z")), Ok(1_467_324_391_000));
        assert_eq!(
            parse(&json!("2016-08-10T19:12:12.411Z")),
            Ok(1_470_856_332_411)
        );
        assert_eq!(
            parse(&json!("2019-05-03T14:23:12.162-07:00")),
            Ok(1_556_918_592_162)
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
            json!(""),
            json!("0000-01-01T00:00:00Z"),
            json!(true),
            json!([1]),
        ] {
            assert!(parse(&bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(parse(&json!(253402300799.999)), Ok(MAX_MILLIS));
    }
}
