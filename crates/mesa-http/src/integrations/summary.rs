//! The daily summary (SPEC §11.1): once a day, at the hour of the setting `notify_daily_hour`
//! (0–23, in the instance's time zone `budget_timezone`, UTC by default; unset = no summary),
//! a notification with the open issues by status, what awaits the board and the runs in flight
//! goes to Telegram and Discord (each while its flag is on).
//!
//! The next summary is planned strictly after the current time when Mesa starts (or the
//! setting changes): a summary whose hour passed while Mesa was down is not sent late, and a
//! restart never sends the same day's summary twice.

use std::time::Duration;

use mesa_core::domain::{IssueStatus, RunStatus, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{Hub, Notification, NotificationKind};

const MS_PER_HOUR: i64 = 3_600_000;
/// How often the plan is compared with the settings (the hour may change).
const RECHECK: Duration = Duration::from_secs(30);

/// The setting's hour, if it is set and valid.
pub fn daily_hour(value: Option<&str>) -> Option<u32> {
    value?.trim().parse::<u32>().ok().filter(|h| *h < 24)
}

/// The first instant strictly after `now` that is `hour`:00 in the zone `offset_minutes` east
/// of UTC.
pub fn next_summary_at(now: Timestamp, hour: u32, offset_minutes: i32) -> Timestamp {
    let today = now.day_start(offset_minutes).as_millis() + i64::from(hour) * MS_PER_HOUR;
    let at = if today > now.as_millis() {
        today
    } else {
        today + 24 * MS_PER_HOUR
    };
    Timestamp::from_millis(at)
}

/// Sends the summary every day at the configured hour until `cancel` fires.
pub async fn run(hub: Hub, cancel: CancellationToken) {
    let mut planned: Option<(u32, i32, Timestamp)> = None;
    loop {
        let settings = hub.mesa().settings().await;
        let now = hub.mesa().now();
        let wanted = daily_hour(settings.get("notify_daily_hour"))
            .map(|h| (h, settings.budget_offset_minutes()));
        planned = match (wanted, planned) {
            (None, _) => None,
            (Some((h, o)), Some((ph, po, at))) if ph == h && po == o => Some((h, o, at)),
            (Some((h, o)), _) => Some((h, o, next_summary_at(now, h, o))),
        };
        if let Some((h, o, at)) = planned
            && at <= now
        {
            send(&hub).await;
            planned = Some((h, o, next_summary_at(now, h, o)));
        }
        let wait = planned.map_or(RECHECK, |(_, _, at)| at.since(now).min(RECHECK));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn send(hub: &Hub) {
    let counts = match hub.mesa().status_counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "daily summary: cannot count");
            return;
        }
    };
    let issues: Vec<(IssueStatus, u64)> = counts.issues.clone();
    let n = summary(
        &issues,
        counts.runs_in(&[RunStatus::Running]),
        counts.runs_in(&[RunStatus::Queued]),
        counts.approvals_pending,
    );
    if let Err(e) = hub.notify(&n).await {
        tracing::warn!(error = %e, "daily summary: cannot queue");
    }
}

/// The summary's text from the counts.
pub fn summary(
    issues: &[(IssueStatus, u64)],
    running: u64,
    queued: u64,
    approvals_pending: u64,
) -> Notification {
    let count = |s: IssueStatus| {
        issues
            .iter()
            .find(|(status, _)| *status == s)
            .map_or(0, |(_, n)| *n)
    };
    let open = [
        IssueStatus::Todo,
        IssueStatus::InProgress,
        IssueStatus::Blocked,
        IssueStatus::InReview,
        IssueStatus::BoardReview,
    ];
    let total: u64 = open.iter().map(|s| count(*s)).sum();
    let by_status: Vec<String> = open
        .iter()
        .map(|s| format!("{}: {}", s.as_str(), count(*s)))
        .collect();
    let text = format!(
        "Open issues: {total} ({})\nAwaiting the board: {} approvals, {} reviews\nRuns: {running} running, {queued} queued\nDone so far: {}",
        by_status.join(", "),
        approvals_pending,
        count(IssueStatus::BoardReview),
        count(IssueStatus::Done),
    );
    Notification::new(NotificationKind::DailySummary, "Daily summary", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = MS_PER_HOUR;

    #[test]
    fn the_next_summary_is_today_if_the_hour_is_ahead_else_tomorrow() {
        let day = 20_000 * 24 * HOUR;
        let now = Timestamp::from_millis(day + 7 * HOUR + 5);
        assert_eq!(
            next_summary_at(now, 9, 0),
            Timestamp::from_millis(day + 9 * HOUR)
        );
        assert_eq!(
            next_summary_at(now, 7, 0),
            Timestamp::from_millis(day + 31 * HOUR)
        );
        // 09:00 at +02:00 is 07:00 UTC, which has just passed.
        assert_eq!(
            next_summary_at(now, 9, 120),
            Timestamp::from_millis(day + 31 * HOUR)
        );
        // Exactly at the hour: the next one.
        let at = Timestamp::from_millis(day + 9 * HOUR);
        assert_eq!(
            next_summary_at(at, 9, 0),
            Timestamp::from_millis(day + 33 * HOUR)
        );
    }

    #[test]
    fn hours_parse_only_in_range() {
        assert_eq!(daily_hour(Some("8")), Some(8));
        assert_eq!(daily_hour(Some("24")), None);
        assert_eq!(daily_hour(Some("")), None);
        assert_eq!(daily_hour(None), None);
    }

    #[test]
    fn the_summary_counts_open_issues() {
        let n = summary(
            &[
                (IssueStatus::Todo, 3),
                (IssueStatus::BoardReview, 1),
                (IssueStatus::Done, 9),
            ],
            2,
            1,
            4,
        );
        assert_eq!(n.kind, NotificationKind::DailySummary);
        assert!(n.text.contains("Open issues: 4"), "{}", n.text);
        assert!(n.text.contains("4 approvals, 1 reviews"), "{}", n.text);
        assert!(n.text.contains("2 running, 1 queued"), "{}", n.text);
    }
}
