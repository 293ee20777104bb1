//! The bot's configuration, read from the settings on every loop turn (they are cached in
//! memory), and who it obeys.

use mesa_core::Settings;

use super::api::User;

/// The Bot API's default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// The bot's settings, present only while `feature_telegram` is on and a token is set.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// `telegram_base_url` (default [`DEFAULT_BASE_URL`]).
    pub base_url: String,
    /// `telegram_bot_token` (secret).
    pub token: String,
    /// `telegram_chat_ids` (or the older single `telegram_chat_id`): where notifications go and
    /// the only chats whose commands and buttons are obeyed.
    pub chats: Vec<i64>,
    /// `telegram_user_ids`: the only users obeyed, by id or `@username`.
    pub users: Vec<UserRef>,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .field("chats", &self.chats)
            .field("users", &self.users)
            .finish()
    }
}

/// An allowed user: a numeric id, or a username (stored without `@`, compared ignoring case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// A user id.
    Id(i64),
    /// A username.
    Name(String),
}

impl TelegramConfig {
    /// The configuration, or `None` while the feature is off or no token is set.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        if !settings.feature("telegram") {
            return None;
        }
        let token = settings.get("telegram_bot_token")?.trim();
        if token.is_empty() {
            return None;
        }
        let base_url = settings
            .get("telegram_base_url")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_BASE_URL)
            .to_owned();
        let chats = settings
            .get("telegram_chat_ids")
            .filter(|v| !v.trim().is_empty())
            .or_else(|| settings.get("telegram_chat_id"))
            .map(parse_chat_ids)
            .unwrap_or_default();
        let users = settings
            .get("telegram_user_ids")
            .map(parse_users)
            .unwrap_or_default();
        Some(TelegramConfig {
            base_url,
            token: token.to_owned(),
            chats,
            users,
        })
    }

    /// Whether a message or button press from `user` in `chat` is obeyed: both must be listed.
    /// With no user listed nobody is obeyed (notifications are still sent).
    pub fn obeys(&self, chat: Option<i64>, user: &User) -> bool {
        let chat_ok = chat.is_some_and(|c| self.chats.contains(&c));
        let user_ok = self.users.iter().any(|u| match u {
            UserRef::Id(id) => *id == user.id,
            UserRef::Name(name) => user
                .username
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name)),
        });
        chat_ok && user_ok
    }
}

/// Comma- or space-separated chat ids; entries that are not integers are skipped (the settings
/// refuse them on the way in).
pub fn parse_chat_ids(value: &str) -> Vec<i64> {
    entries(value).filter_map(|e| e.parse().ok()).collect()
}

/// Comma- or space-separated user ids and `@usernames`.
pub fn parse_users(value: &str) -> Vec<UserRef> {
    entries(value)
        .filter_map(|e| match e.strip_prefix('@') {
            Some(name) if !name.is_empty() => Some(UserRef::Name(name.to_owned())),
            Some(_) => None,
            None => e.parse().ok().map(UserRef::Id),
        })
        .collect()
}

fn entries(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(chats: &str, users: &str) -> TelegramConfig {
        TelegramConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: "t".to_owned(),
            chats: parse_chat_ids(chats),
            users: parse_users(users),
        }
    }

    fn user(id: i64, name: Option<&str>) -> User {
        User {
            id,
            username: name.map(str::to_owned),
        }
    }

    #[test]
    fn lists_parse() {
        assert_eq!(parse_chat_ids("12, -100345 ,x"), vec![12, -100_345]);
        assert_eq!(
            parse_users("42 @Ana, @"),
            vec![UserRef::Id(42), UserRef::Name("Ana".to_owned())]
        );
    }

    #[test]
    fn both_the_chat_and_the_user_must_be_allowed() {
        let c = config("-100, 7", "42, @ana");
        assert!(c.obeys(Some(-100), &user(42, None)));
        assert!(c.obeys(Some(7), &user(9, Some("ANA"))));
        assert!(!c.obeys(Some(-101), &user(42, None)), "another chat");
        assert!(!c.obeys(Some(-100), &user(43, Some("bob"))), "another user");
        assert!(!c.obeys(None, &user(42, None)), "no chat");
        assert!(!config("-100", "").obeys(Some(-100), &user(42, None)));
    }

    #[test]
    fn the_token_is_not_printed() {
        let c = config("1", "1");
        assert!(!format!("{c:?}").contains("token: \"t\""));
    }
}
