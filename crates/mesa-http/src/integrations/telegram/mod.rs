//! The Telegram bot (SPEC §11.1) over the Bot API with long polling, in plain reqwest.
//!
//! Two halves, both switched live by `feature_telegram` and the `telegram_*` settings (read
//! from the settings cache on every turn, so a change applies without a restart):
//!
//! - the **poller** ([`run_poller`]): `getUpdates` in a loop; button presses resolve approvals
//!   and commands run against the core, as `telegram:<user>` (`handle`). While a call is in
//!   flight the configuration is watched, so turning the flag off (or changing the token)
//!   drops the call and stops polling within [`WATCH_EVERY`]. Network errors and 5xx back off
//!   exponentially up to [`MAX_BACKOFF`].
//! - the **notification sink** ([`TelegramSink`]): renders a queued notification and sends
//!   it to every allowed chat; approvals get "Approve" and "Reject" buttons. How the outbox is
//!   read, retried and persisted is the generic delivery loop's business.

pub mod api;
pub mod commands;
pub mod config;
mod handle;
pub mod render;
mod sink;

use std::time::Duration;

use mesa_core::Mesa;
use tokio_util::sync::CancellationToken;

pub use api::{BotApi, BotError};
pub use config::TelegramConfig;
pub use sink::TelegramSink;

/// How often the configuration is compared while a call is in flight or the bot is off.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);
/// The long-poll timeout of `getUpdates`.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between failed polls.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait after `failures` failed polls in a row: 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// The HTTP client of the bot (the TLS provider is installed by the program).
fn client() -> Result<reqwest::Client, BotError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| BotError::Network(e.to_string()))
}

/// Where polling stands between turns.
#[derive(Default)]
struct PollState {
    /// The token the state belongs to: a new token (another bot) starts over.
    token: String,
    /// The next `getUpdates` offset (the last update handled, plus one).
    offset: Option<i64>,
    /// The bot's username, from `getMe` (`Some(None)`: known to have none).
    me: Option<Option<String>>,
    /// Failed calls in a row.
    failures: u32,
}

/// Polls the Bot API for updates until `cancel` fires; idle while the bot is off.
pub async fn run_poller(mesa: Mesa, cancel: CancellationToken) {
    let http = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "telegram: no HTTP client, the bot is off");
            return;
        }
    };
    let mut state = PollState::default();
    while !cancel.is_cancelled() {
        let Some(config) = TelegramConfig::from_settings(&mesa.settings().await) else {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(WATCH_EVERY) => continue,
            }
        };
        if state.token != config.token {
            state = PollState {
                token: config.token.clone(),
                ..PollState::default()
            };
        }
        let api = BotApi::new(http.clone(), &config.base_url, &config.token);
        let turn = tokio::select! {
            () = cancel.cancelled() => return,
            () = changed(&mesa, &config) => continue,
            r = fetch(&api, &mut state) => r,
        };
        match turn {
            Ok(updates) => {
                state.failures = 0;
                let ctx = handle::Context {
                    mesa: &mesa,
                    api: &api,
                    config: &config,
                    me: state.me.as_ref().and_then(|m| m.as_deref()),
                };
                for update in updates {
                    // Confirmed to Telegram by the next call's offset.
                    state.offset = Some(update.update_id + 1);
                    handle::update(&ctx, update).await;
                }
            }
            Err(e) => {
                state.failures += 1;
                let wait = match &e {
                    BotError::RetryAfter(after) => *after,
                    _ => backoff(state.failures),
                };
                tracing::warn!(error = %e, retry_in = ?wait, "telegram: polling failed");
                pause(&mesa, &config, &cancel, wait).await;
            }
        }
    }
}

/// Waits `wait`, or less if the configuration changes or `cancel` fires.
async fn pause(mesa: &Mesa, config: &TelegramConfig, cancel: &CancellationToken, wait: Duration) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = changed(mesa, config) => {}
        () = tokio::time::sleep(wait) => {}
    }
}

/// One turn: `getMe` once per token, then a long `getUpdates`.
async fn fetch(api: &BotApi, state: &mut PollState) -> Result<Vec<api::Update>, BotError> {
    if state.me.is_none() {
        let username = api.get_me().await?.username.filter(|u| !u.is_empty());
        state.me = Some(username);
    }
    api.get_updates(state.offset, POLL_TIMEOUT).await
}

/// Resolves when the configuration is no longer `current` (flag off, token or lists changed).
async fn changed(mesa: &Mesa, current: &TelegramConfig) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if TelegramConfig::from_settings(&mesa.settings().await).as_ref() != Some(current) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
