//! Cron schedules (SPEC §6.4): a 5-field cron expression or an interval (`20m`, `1h`, `1d`).
//! Missed ticks during downtime fire once, not once per missed tick.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use mesa_domain::Timestamp;

use crate::error::{Result, SchedulerError};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, counted from the last firing.
    Every(Duration),
    /// A 5-field cron expression, evaluated at a fixed UTC offset.
    Cron {
        /// The expression.
        cron: Box<croner::Cron>,
        /// The offset of the budget/day time zone, minutes east of UTC.
        offset_minutes: i32,
    },
}

fn invalid(text: &str, reason: impl Into<String>) -> SchedulerError {
    SchedulerError::Schedule {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

impl Schedule {
    /// Reads `text`; cron expressions are evaluated at `offset_minutes` east of UTC.
    pub fn parse(text: &str, offset_minutes: i32) -> Result<Schedule> {
        let t = text.trim();
        if let Some(unit) = t.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd')) {
            let n: u64 = t[..t.len() - 1]
                .parse()
                .map_err(|_| invalid(t, "an interval is a whole number of m, h or d"))?;
            let per = match unit {
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            if n == 0 {
                return Err(invalid(t, "an interval must be at least 1"));
            }
            return Ok(Schedule::Every(Duration::from_secs(n * per)));
        }
        if t.split_whitespace().count() != 5 {
            return Err(invalid(t, "a cron expression has 5 fields"));
        }
        let cron = croner::Cron::from_str(t).map_err(|e| invalid(t, e.to_string()))?;
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            offset_minutes,
        })
    }

    /// The first firing strictly after `after`, if there is one.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Every(d) => Some(after + *d),
            Schedule::Cron {
                cron,
                offset_minutes,
            } => {
                let tz = FixedOffset::east_opt(offset_minutes * 60)?;
                let at: DateTime<FixedOffset> =
                    tz.timestamp_millis_opt(after.as_millis()).single()?;
                let next = cron.find_next_occurrence(&at, false).ok()?;
                Some(Timestamp::from_millis(next.timestamp_millis()))
            }
        }
    }
}

/// What to do with a cron at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronTick {
    /// Fire a run now.
    pub fire: bool,
    /// The next firing to store.
    pub next_run_at: Option<Timestamp>,
}

/// Decides a cron at `now` from its stored `next_run_at` (`None`: never computed, e.g. a new
/// cron expression). Fires at most once however many ticks were missed, and the next firing is
/// always in the future.
pub fn tick(schedule: &Schedule, next_run_at: Option<Timestamp>, now: Timestamp) -> CronTick {
    match next_run_at {
        None => CronTick {
            fire: false,
            next_run_at: schedule.next_after(now),
        },
        Some(due) if due > now => CronTick {
            fire: false,
            next_run_at: Some(due),
        },
        Some(_) => CronTick {
            fire: true,
            next_run_at: schedule.next_after(now),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339("t", s).unwrap()
    }

    #[test]
    fn intervals_and_expressions_parse() {
        assert!(matches!(Schedule::parse("20m", 0), Ok(Schedule::Every(d)) if d.as_secs() == 1200));
        assert!(
            matches!(Schedule::parse("1d", 0), Ok(Schedule::Every(d)) if d.as_secs() == 86_400)
        );
        assert!(Schedule::parse("*/15 * * * 1-5", 0).is_ok());
        for bad in ["0m", "xm", "* * * *", "61 * * * *", "", "1w"] {
            assert!(
                Schedule::parse(bad, 0).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn cron_next_follows_the_expression_and_offset() {
        let s = Schedule::parse("30 9 * * *", 0).unwrap();
        assert_eq!(
            s.next_after(t("2026-11-25T08:00:00Z")),
            Some(t("2026-11-25T09:30:00Z"))
        );
        assert_eq!(
            s.next_after(t("2026-11-25T09:30:00Z")),
            Some(t("2026-11-26T09:30:00Z"))
        );
        // 09:30 at UTC+2 is 07:30 UTC.
        let s = Schedule::parse("30 9 * * *", 120).unwrap();
        assert_eq!(
            s.next_after(t("2026-11-25T00:00:00Z")),
            Some(t("2026-11-25T07:30:00Z"))
        );
    }

    #[test]
    fn missed_ticks_fire_once_and_the_next_is_in_the_future() {
        let s = Schedule::parse("1h", 0).unwrap();
        let now = t("2026-11-25T12:00:00Z");
        // Down for three days: one firing, next an hour from now.
        let tick = tick(&s, Some(t("2026-11-22T12:00:00Z")), now);
        assert!(tick.fire);
        assert_eq!(tick.next_run_at, Some(t("2026-11-25T13:00:00Z")));
        let again = super::tick(&s, tick.next_run_at, now);
        assert!(!again.fire);
        let new = super::tick(&s, None, now);
        assert!(!new.fire);
        assert_eq!(new.next_run_at, Some(t("2026-11-25T13:00:00Z")));
    }

    proptest::proptest! {
        #[test]
        fn a_tick_never_schedules_the_past(mins in 1u64..10_000, back in 0i64..10_000_000, now in 0i64..4_000_000_000_000) {
            let s = Schedule::parse(&format!("{mins}m"), 0).unwrap();
            let now = Timestamp::from_millis(now);
            let due = Timestamp::from_millis(now.as_millis() - back);
            let tick = tick(&s, Some(due), now);
            proptest::prop_assert!(tick.fire);
            proptest::prop_assert!(tick.next_run_at.unwrap() > now);
        }
    }
}
