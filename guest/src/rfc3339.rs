//! RFC 3339 date-times, parsed strictly, and the civil calendar arithmetic
//! they need (the guest has no clock and no date library).

/// A parsed RFC 3339 date-time as nanoseconds since the Unix epoch (UTC).
pub fn parse_rfc3339(s: &str) -> Result<i128, String> {
    let b = s.as_bytes();
    if b.len() > 64 {
        return Err("is too long to be an RFC 3339 date-time".into());
    }
    if !s.is_ascii() {
        return Err("contains non-ASCII characters".into());
    }
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4, "year")?;
    p.expect(b"-", "'-' after the year")?;
    let month = p.digits(2, "month")?;
    p.expect(b"-", "'-' after the month")?;
    let day = p.digits(2, "day")?;
    p.expect(b"Tt", "'T' between date and time")?;
    let hour = p.digits(2, "hour")?;
    p.expect(b":", "':' after the hour")?;
    let minute = p.digits(2, "minute")?;
    p.expect(b":", "':' after the minute")?;
    let second = p.digits(2, "second")?;
    let mut nanos: i128 = 0;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            if p.i - start < 9 {
                nanos = nanos * 10 + i128::from(b[p.i] - b'0');
            }
            p.i += 1;
        }
        let n = p.i - start;
        if n == 0 {
            return Err("has a '.' with no fractional digits".into());
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_minutes: i64 = match p.peek() {
        Some(b'Z' | b'z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let oh = p.digits(2, "offset hour")?;
            p.expect(b":", "':' in the offset")?;
            let om = p.digits(2, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err("has an offset out of range".into());
            }
            let m = (oh * 60 + om) as i64;
            if sign == b'-' { -m } else { m }
        }
        _ => return Err("has no time zone offset ('Z' or ±hh:mm)".into()),
    };
    if p.i != b.len() {
        return Err("has characters after the time zone offset".into());
    }
    if !(1..=12).contains(&month) {
        return Err("has a month out of range".into());
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("has a day out of range for its month".into());
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("has a time of day out of range".into());
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second) - offset_minutes * 60;
    Ok(i128::from(secs) * 1_000_000_000 + nanos)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn digits(&mut self, n: usize, what: &str) -> Result<u32, String> {
        let part = self
            .b
            .get(self.i..self.i + n)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        let part = part.ok_or_else(|| format!("needs {n} ASCII digits for the {what} at position {}", self.i + 1))?;
        self.i += n;
        Ok(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    fn expect(&mut self, one_of: &[u8], what: &str) -> Result<(), String> {
        match self.peek() {
            Some(c) if one_of.contains(&c) => {
                self.i += 1;
                Ok(())
            }
            _ => Err(format!("needs {what} at position {}", self.i + 1)),
        }
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(seconds: i64) -> String {
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-11-23T10:00:00Z"), Ok(1_795_428_000 * NS));
        assert_eq!(parse_rfc3339("2026-11-23T12:00:00+02:00"), Ok(1_795_428_000 * NS));
        assert_eq!(parse_rfc3339("2026-11-23T10:00:00.5z"), Ok(1_795_428_000 * NS + NS / 2));
        assert_eq!(
            parse_rfc3339("2024-02-29t00:00:00.123456789123-00:30"),
            Ok(1_709_166_600 * NS + 123_456_789)
        );
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "2026-11-23",
            "2026-11-23 10:00:00Z",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00Z\n",
            "2026-11-23T10:00:00+0200",
            "２026-11-23T10:00:00Z",
            "1700000000",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn civil_round_trip() {
        for secs in [0, 951_782_400, 1_795_428_000, -86_400] {
            let text = format_utc(secs);
            assert_eq!(parse_rfc3339(&text), Ok(i128::from(secs) * NS), "{text}");
        }
    }
}
