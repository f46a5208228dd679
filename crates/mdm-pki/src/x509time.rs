//! Conversions between `time::OffsetDateTime` and X.509/CMS `Time`.

use std::time::Duration;

use der::DateTime;
use time::OffsetDateTime;
use x509_cert::time::Time;

use crate::PkiError;

/// Converts to an X.509 `Time`: UTCTime through 2049, GeneralizedTime after
/// (RFC 5280 §4.1.2.5). Sub-second precision is dropped.
pub fn to_x509_time(t: OffsetDateTime) -> Result<Time, PkiError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| PkiError::InvalidArgument("time before 1970".into()))?;
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| PkiError::InvalidArgument(format!("time out of range: {e}")))?;
    Ok(Time::from(dt))
}

/// Converts an X.509 `Time` to `OffsetDateTime` (UTC).
pub fn from_x509_time(t: &Time) -> Result<OffsetDateTime, PkiError> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| PkiError::InvalidArgument("time out of range".into()))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| PkiError::InvalidArgument(format!("time out of range: {e}")))
}

/// Reads a CMS signingTime value leniently: DER UTCTime/GeneralizedTime, and
/// the BER forms real peers send (Go's pkcs7 writes `YYMMDDhhmmss-0400`;
/// seconds may be missing; fractions are ignored). `None` when unreadable.
pub fn parse_lenient_time(value: &der::Any) -> Option<OffsetDateTime> {
    use der::Tagged;
    if let Ok(t) = value.decode_as::<Time>() {
        return from_x509_time(&t).ok();
    }
    let text = std::str::from_utf8(value.value()).ok()?;
    let (century_digits, year_len) = match value.tag() {
        der::Tag::UtcTime => (None, 2),
        der::Tag::GeneralizedTime => (Some(()), 4),
        _ => return None,
    };
    let (body, offset) = split_offset(text)?;
    let digits = body.split(['.', ',']).next()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() < year_len + 8 {
        return None;
    }
    let num = |from: usize, len: usize| digits.get(from..from + len)?.parse::<i32>().ok();
    let mut year = num(0, year_len)?;
    if century_digits.is_none() {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let rest = year_len;
    let month = time::Month::try_from(u8::try_from(num(rest, 2)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(year, month, u8::try_from(num(rest + 2, 2)?).ok()?).ok()?;
    let hms = |i: usize| num(rest + 4 + 2 * i, 2).and_then(|v| u8::try_from(v).ok());
    let clock = time::Time::from_hms(hms(0)?, hms(1)?, hms(2).unwrap_or(0)).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_offset(offset)
            .to_offset(time::UtcOffset::UTC),
    )
}

fn split_offset(text: &str) -> Option<(&str, time::UtcOffset)> {
    if let Some(body) = text.strip_suffix('Z') {
        return Some((body, time::UtcOffset::UTC));
    }
    let pos = text.rfind(['+', '-'])?;
    let (body, off) = text.split_at(pos);
    let sign: i8 = if off.starts_with('-') { -1 } else { 1 };
    let h: i8 = off.get(1..3)?.parse().ok()?;
    let m: i8 = off.get(3..5)?.parse().ok()?;
    Some((body, time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_generalized_round_trip() {
        for secs in [
            0i64,
            1_700_000_000,
            2_556_143_999,
            2_556_144_000,
            4_102_444_800,
        ] {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let x = to_x509_time(t).unwrap();
            assert_eq!(from_x509_time(&x).unwrap(), t, "{secs}");
            // 2050-01-01T00:00:00Z = 2_524_608_000 switches to GeneralizedTime.
            assert_eq!(
                matches!(x, Time::GeneralTime(_)),
                secs >= 2_524_608_000,
                "{secs}"
            );
        }
    }

    #[test]
    fn lenient_times() {
        let any = |tag, s: &str| der::Any::new(tag, s.as_bytes()).unwrap();
        let utc = OffsetDateTime::from_unix_timestamp(1_464_694_214).unwrap(); // 2016-05-31T11:30:14Z
        assert_eq!(
            parse_lenient_time(&any(der::Tag::UtcTime, "160531113014Z")),
            Some(utc)
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::UtcTime, "160531073014-0400")),
            Some(utc)
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::GeneralizedTime, "20160531133014.5+0200")),
            Some(utc)
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::UtcTime, "1605311130Z")),
            Some(utc - time::Duration::seconds(14))
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::UtcTime, "16053111")),
            None
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::UtcTime, "garbage!!!!!!Z")),
            None
        );
        assert_eq!(
            parse_lenient_time(&any(der::Tag::Utf8String, "160531113014Z")),
            None
        );
    }

    #[test]
    fn rejects_pre_epoch() {
        let t = OffsetDateTime::from_unix_timestamp(-1).unwrap();
        assert!(to_x509_time(t).is_err());
    }
}
