//! Instants in UTC with millisecond precision. RFC 3339 on the wire, integer milliseconds at rest.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ValidationError;

/// A UTC instant, milliseconds since the Unix epoch. This crate never reads the clock: callers
/// pass `now` in, which keeps every decision deterministic and testable with a fake clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// From a `time` value (used by the clock in `mesa-core`).
    pub fn from_offset_datetime(t: OffsetDateTime) -> Self {
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// As a `time` value in UTC.
    pub fn to_offset_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses RFC 3339 (`2026-11-25T13:31:58Z`, any offset), naming `field` on error.
    pub fn parse_rfc3339(field: &'static str, text: &str) -> Result<Self, ValidationError> {
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map(Self::from_offset_datetime)
            .map_err(|_| {
                ValidationError::new(
                    field,
                    format!("{field} must be an RFC 3339 time such as 2026-01-31T09:00:00Z"),
                )
            })
    }

    /// RFC 3339 in UTC with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        let t = self.to_offset_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }

    /// The start of the day containing this instant, for a day that begins at UTC offset
    /// `offset_minutes` (the budget day, SPEC §1 BudgetPolicy).
    #[must_use]
    pub fn day_start(self, offset_minutes: i32) -> Timestamp {
        let shift = i64::from(offset_minutes) * 60_000;
        let local = self.0 + shift;
        Timestamp(local.div_euclid(MS_PER_DAY) * MS_PER_DAY - shift)
    }

    /// The start of the next day after this instant's day (see [`Timestamp::day_start`]).
    #[must_use]
    pub fn next_day_start(self, offset_minutes: i32) -> Timestamp {
        Timestamp(self.day_start(offset_minutes).0 + MS_PER_DAY)
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339("time", &text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse_rfc3339("at", "2026-11-25T13:31:58.123Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T13:31:58.123Z");
        let shifted = Timestamp::parse_rfc3339("at", "2026-11-25T14:31:58.123+01:00").unwrap();
        assert_eq!(t, shifted);
    }

    #[test]
    fn bad_time_names_field() {
        let err = Timestamp::parse_rfc3339("expires_at", "tomorrow").unwrap_err();
        assert_eq!(err.field, "expires_at");
    }

    #[test]
    fn budget_day_boundaries() {
        let t = Timestamp::parse_rfc3339("at", "2026-11-25T23:30:00Z").unwrap();
        assert_eq!(t.day_start(0).to_rfc3339(), "2026-11-25T00:00:00.000Z");
        // At UTC+1 it is already 00:30 on the 26th.
        assert_eq!(t.day_start(60).to_rfc3339(), "2026-11-25T23:00:00.000Z");
        assert_eq!(t.next_day_start(0).to_rfc3339(), "2026-11-26T00:00:00.000Z");
        // Before the epoch, days still start at midnight.
        assert_eq!(
            Timestamp::from_millis(-1).day_start(0),
            Timestamp::from_millis(-MS_PER_DAY)
        );
    }
}
