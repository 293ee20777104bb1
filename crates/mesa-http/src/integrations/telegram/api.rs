//! The few Bot API wire types Mesa reads and writes, and a small client over reqwest.
//!
//! Every call is `POST <base>/bot<token>/<method>` with a JSON body; every answer is the Bot API
//! envelope `{ok, result, description, error_code, parameters: {retry_after}}`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a Bot API call failed, sorted by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotError {
    /// The Bot API could not be reached, or the call timed out: try again later.
    #[error("cannot reach the Bot API: {0}")]
    Network(String),
    /// The Bot API failed (5xx) or answered something that is not its envelope: try again later.
    #[error("the Bot API failed ({status}): {description}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// What it said.
        description: String,
    },
    /// Too many requests (429): try again after this long.
    #[error("rate limited by the Bot API for {0:?}")]
    RetryAfter(Duration),
    /// The Bot API refused the call (4xx other than 429).
    #[error("the Bot API refused the call ({status}): {description}")]
    Refused {
        /// The HTTP status (or the envelope's `error_code`).
        status: u16,
        /// What it said.
        description: String,
    },
}

impl BotError {
    /// True when the token itself is wrong (401, or 404 for a token the API does not know):
    /// a configuration problem the board can fix, so queued messages wait for it.
    pub fn is_bad_token(&self) -> bool {
        matches!(
            self,
            BotError::Refused {
                status: 401 | 404,
                ..
            }
        )
    }
}

/// One incoming update (`getUpdates`); Mesa reads messages and button presses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Update {
    /// Increasing id; the next `getUpdates` offset is the last one plus one.
    pub update_id: i64,
    /// A new message.
    #[serde(default)]
    pub message: Option<Message>,
    /// A press on an inline keyboard button.
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// Its id within the chat.
    pub message_id: i64,
    /// The chat it is in.
    pub chat: Chat,
    /// Its sender (absent in channels).
    #[serde(default)]
    pub from: Option<User>,
    /// Its text.
    #[serde(default)]
    pub text: Option<String>,
}

/// A chat (private chats have the user's id; groups have negative ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Chat {
    /// The chat id.
    pub id: i64,
}

/// A Telegram user (or bot).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The user id.
    pub id: i64,
    /// The `@username`, without the `@`, if the user has one.
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// How the user appears in Mesa's activity log: the username if any, else the id.
    pub fn display_name(&self) -> String {
        match &self.username {
            Some(name) if !name.is_empty() => name.clone(),
            _ => self.id.to_string(),
        }
    }
}

/// A button press.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallbackQuery {
    /// Id to answer with `answerCallbackQuery`.
    pub id: String,
    /// Who pressed.
    pub from: User,
    /// The message the button belongs to.
    #[serde(default)]
    pub message: Option<Message>,
    /// The button's `callback_data`.
    #[serde(default)]
    pub data: Option<String>,
}

/// An inline keyboard under a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineKeyboard {
    /// Rows of buttons.
    pub inline_keyboard: Vec<Vec<Button>>,
}

/// An inline keyboard button that sends `callback_data` back when pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    /// The label.
    pub text: String,
    /// What comes back in the callback query (at most 64 bytes).
    pub callback_data: String,
}

/// A message to send (`sendMessage`); plain text, no parse mode, so nothing needs escaping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingMessage {
    /// The text (at most 4096 characters).
    pub text: String,
    /// Buttons under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<InlineKeyboard>,
}

impl OutgoingMessage {
    /// A plain message.
    pub fn text(text: impl Into<String>) -> Self {
        OutgoingMessage {
            text: text.into(),
            reply_markup: None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// The Bot API of one bot: `<base>/bot<token>/`.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds the token.
        f.debug_struct("BotApi").finish_non_exhaustive()
    }
}

/// How long a call may take beyond its long-poll timeout.
const CALL_SLACK: Duration = Duration::from_secs(10);

impl BotApi {
    /// The bot with `token` at `base_url` (e.g. `https://api.telegram.org`).
    pub fn new(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        BotApi {
            http,
            base: format!("{}/bot{token}", base_url.trim_end_matches('/')),
        }
    }

    /// `getMe`: the bot itself.
    pub async fn get_me(&self) -> Result<User, BotError> {
        self.call("getMe", &serde_json::json!({}), Duration::ZERO)
            .await
    }

    /// `getUpdates`: the updates after `offset`, waiting up to `timeout` for one to arrive.
    /// Passing an offset confirms every update before it to Telegram.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<Update>, BotError> {
        let body = serde_json::json!({
            "offset": offset,
            "timeout": timeout.as_secs(),
            "allowed_updates": ["message", "callback_query"],
        });
        self.call("getUpdates", &body, timeout).await
    }

    /// `sendMessage` to `chat_id`; the message id.
    pub async fn send_message(&self, chat_id: i64, msg: &OutgoingMessage) -> Result<i64, BotError> {
        let mut body = serde_json::to_value(msg).unwrap_or_default();
        body["chat_id"] = chat_id.into();
        let sent: Message = self.call("sendMessage", &body, Duration::ZERO).await?;
        Ok(sent.message_id)
    }

    /// `answerCallbackQuery`: stops the button's spinner and shows `text` briefly.
    pub async fn answer_callback(&self, query_id: &str, text: &str) -> Result<(), BotError> {
        let body = serde_json::json!({ "callback_query_id": query_id, "text": text });
        let _: bool = self
            .call("answerCallbackQuery", &body, Duration::ZERO)
            .await?;
        Ok(())
    }

    /// `editMessageText`: replaces a message's text and removes its buttons.
    pub async fn edit_text(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
    ) -> Result<(), BotError> {
        let body = serde_json::json!({
            "chat_id": chat_id,
            "message_id": message_id,
            "text": text,
        });
        // The result is the edited message (or `true` for inline messages): not needed.
        let _: serde_json::Value = self.call("editMessageText", &body, Duration::ZERO).await?;
        Ok(())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &serde_json::Value,
        long_poll: Duration,
    ) -> Result<T, BotError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .timeout(long_poll + CALL_SLACK)
            .json(body)
            .send()
            .await
            // Without the URL: it holds the token.
            .map_err(|e| BotError::Network(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| BotError::Network(e.without_url().to_string()))?;
        interpret(status, &bytes)
    }
}

/// Reads a Bot API answer: the result, or the error sorted by what to do about it.
pub(crate) fn interpret<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T, BotError> {
    let envelope: Envelope<T> = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            let description = format!("unreadable answer: {e}");
            return Err(if (400..500).contains(&status) && status != 429 {
                BotError::Refused {
                    status,
                    description,
                }
            } else {
                BotError::Server {
                    status,
                    description,
                }
            });
        }
    };
    if envelope.ok
        && let Some(result) = envelope.result
    {
        return Ok(result);
    }
    let code = envelope.error_code.unwrap_or(status);
    let description = envelope
        .description
        .unwrap_or_else(|| "no description".to_owned());
    if let Some(after) = envelope.parameters.and_then(|p| p.retry_after) {
        return Err(BotError::RetryAfter(Duration::from_secs(after)));
    }
    Err(match code {
        429 => BotError::RetryAfter(Duration::from_secs(1)),
        400..=499 => BotError::Refused {
            status: code,
            description,
        },
        _ => BotError::Server {
            status: code,
            description,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_by_what_to_do() {
        let ok: Result<bool, _> = interpret(200, br#"{"ok":true,"result":true}"#);
        assert_eq!(ok, Ok(true));
        let limited: Result<bool, _> = interpret(
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert_eq!(limited, Err(BotError::RetryAfter(Duration::from_secs(7))));
        let refused: Result<bool, _> = interpret(
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        );
        assert!(matches!(
            refused,
            Err(BotError::Refused { status: 400, .. })
        ));
        let bad_token: Result<bool, _> = interpret(
            401,
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        );
        assert!(bad_token.unwrap_err().is_bad_token());
        let gateway: Result<bool, _> = interpret(502, b"<html>Bad Gateway</html>");
        assert!(matches!(gateway, Err(BotError::Server { status: 502, .. })));
    }

    #[test]
    fn updates_parse_with_missing_optional_fields() {
        let updates: Vec<Update> = interpret(
            200,
            br#"{"ok":true,"result":[
                {"update_id":5,"message":{"message_id":1,"chat":{"id":-100},"text":"/status"}},
                {"update_id":6,"callback_query":{"id":"q","from":{"id":7,"username":"ana"},"data":"approve:x"}},
                {"update_id":7,"edited_message":{"message_id":2,"chat":{"id":1}}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[0].message.as_ref().unwrap().chat.id, -100);
        assert_eq!(
            updates[1]
                .callback_query
                .as_ref()
                .unwrap()
                .from
                .display_name(),
            "ana"
        );
        assert!(updates[2].message.is_none() && updates[2].callback_query.is_none());
    }
}
