//! `/settings`: instance, feature flags, integrations (secrets write-only), the org's daily
//! budget, board tokens, agent CLIs found on PATH, and backup with an integrity check.
//! Every form posts to its own route and redirects back (303); bad input re-renders the page
//! with the message next to the field (422) and writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use mesa_core::domain::{ApiKeyId, ApiKeyKind, MicroUsd, Name, RunnerKind, Timestamp};
use mesa_core::{BudgetLimits, CoreError, ErrorKind, FEATURE_FLAGS, Mesa, SessionUser};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Integration settings: `(key, label, secret)`. Secrets are write-only (SPEC §14): the page
/// says whether one is set, never what it is.
const INTEGRATIONS: &[(&str, &str, bool)] = &[
    ("telegram_bot_token", "Telegram bot token", true),
    (
        "telegram_chat_ids",
        "Telegram chats (ids, comma-separated; notifications go there, commands obeyed there)",
        false,
    ),
    (
        "telegram_user_ids",
        "Telegram users obeyed (numeric ids or @usernames, comma-separated)",
        false,
    ),
    (
        "telegram_base_url",
        "Telegram Bot API URL (empty: https://api.telegram.org)",
        false,
    ),
    ("discord_webhook_url", "Discord webhook URL", true),
    (
        "notify_daily_hour",
        "Daily summary hour (0-23, budget time zone; empty: none)",
        false,
    ),
    ("github_token", "GitHub token", true),
    ("github_repo", "GitHub repository (owner/name)", false),
    (
        "github_api_url",
        "GitHub API URL (empty: https://api.github.com)",
        false,
    ),
];

/// Instance settings shown in the Instance form: `(key, label, help)`.
const INSTANCE: &[(&str, &str, &str)] = &[
    (
        "instance_name",
        "Instance name",
        "Shown in the title bar and notifications.",
    ),
    (
        "issue_prefix",
        "Issue prefix",
        "Upper-case letters before issue numbers, e.g. MESA in MESA-12. Applies to new issues.",
    ),
    (
        "budget_timezone",
        "Budget day time zone",
        "UTC or an offset such as +02:00: when the budget day starts.",
    ),
];

/// Day length, for token expiry.
const DAY_MS: i64 = 86_400_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", axum::routing::get(show))
        .route("/settings/instance", post(save_instance))
        .route("/settings/flags", post(toggle_flag))
        .route("/settings/integrations", post(save_integrations))
        .route("/settings/budget", post(save_budget))
        .route("/settings/tokens", post(create_token))
        .route("/settings/tokens/{id}/revoke", post(revoke_token))
        .route("/settings/backup", post(backup))
}

/// What a re-rendered page adds: field errors, a new token to show once, a notice.
#[derive(Debug, Default)]
struct Extra {
    errors: BTreeMap<String, String>,
    /// Form values to keep after a refusal (never secrets).
    values: BTreeMap<String, String>,
    new_token: Option<String>,
}

/// `GET /settings` query: the outcome of a backup (after its redirect).
#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    backup: Option<String>,
    integrity: Option<String>,
}

/// A board token as listed.
#[derive(Debug, Serialize)]
struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    revoked: bool,
}

async fn show(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ShowQuery>,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, Extra::default(), &q, StatusCode::OK).await
}

async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    extra: Extra,
    q: &ShowQuery,
    status: StatusCode,
) -> Result<Response, UiError> {
    let settings = mesa.settings().await;
    let value = |key: &str| {
        extra
            .values
            .get(key)
            .cloned()
            .unwrap_or_else(|| settings.get(key).unwrap_or_default().to_owned())
    };
    let instance: Vec<_> = INSTANCE
        .iter()
        .map(|(key, label, help)| {
            let v = match *key {
                _ if extra.values.contains_key(*key) => value(key),
                "issue_prefix" => settings.issue_prefix().to_string(),
                "instance_name" => settings.instance_name().to_owned(),
                _ => value(key),
            };
            context! { key => *key, label => *label, help => *help, value => v }
        })
        .collect();
    let flags: Vec<_> = FEATURE_FLAGS
        .iter()
        .map(|f| context! { name => *f, on => settings.feature(f) })
        .collect();
    let integrations: Vec<_> = INTEGRATIONS
        .iter()
        .map(|(key, label, secret)| {
            let is_set = settings.get(key).is_some_and(|v| !v.is_empty());
            context! {
                key => *key,
                label => *label,
                secret => *secret,
                is_set => is_set,
                value => if *secret { String::new() } else { value(key) },
            }
        })
        .collect();
    let limits = mesa.org_budget(&user.principal.actor).await?;
    let budget = context! {
        cost => extra.values.get("daily_cost_limit_usd").cloned()
            .unwrap_or_else(|| format_usd_input(limits.daily_cost_limit_usd)),
        tokens => extra.values.get("daily_token_limit").cloned()
            .unwrap_or_else(|| limits.daily_token_limit.to_string()),
    };
    let ctx = context! {
        instance => instance,
        flags => flags,
        integrations => integrations,
        budget => budget,
        tokens => view(&token_rows(mesa).await?),
        runners => runner_rows(mesa),
        errors => view(&extra.errors),
        new_token => extra.new_token,
        backup => q.backup.as_deref().filter(|b| is_backup_name(b)),
        integrity => q.integrity.as_deref().map(|i| i == "ok"),
        data_dir => mesa.config().data_dir.display().to_string(),
    };
    let html = ui
        .page(mesa, user, "settings", "pages/settings.html", ctx)
        .await?;
    let mut resp = (status, html).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Dollars as a form value: `0` or a plain decimal without trailing zeros.
fn format_usd_input(m: MicroUsd) -> String {
    let text = format!("{:.6}", m.as_usd());
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

async fn token_rows(mesa: &Mesa) -> Result<Vec<TokenRow>, UiError> {
    let now = mesa.now();
    Ok(mesa
        .keys(None)
        .await?
        .into_iter()
        .filter(|k| k.kind == ApiKeyKind::Board)
        .map(|k| TokenRow {
            id: k.id.to_string(),
            revoked: !k.is_live(now),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at.to_rfc3339(),
            last_used_at: k.last_used_at.map(Timestamp::to_rfc3339),
            expires_at: k.expires_at.map(Timestamp::to_rfc3339),
        })
        .collect())
}

/// The agent CLIs of SPEC §4.4 and whether each was found on `PATH` when the server started
/// (the detection bootstrap uses, `CoreConfig::available_runners`).
fn runner_rows(mesa: &Mesa) -> Vec<minijinja::Value> {
    let found = &mesa.config().available_runners;
    RunnerKind::CLI_PREFERENCE
        .iter()
        .map(|kind| {
            context! {
                runner => kind.as_str(),
                binary => kind.binary().unwrap_or_default(),
                found => found.contains(kind),
            }
        })
        .collect()
}

/// A refused change as field errors (the field the core names), or `None` for a server fault.
fn refusal(err: &CoreError) -> Option<(StatusCode, String, String)> {
    let status = match err.kind() {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::BudgetExceeded | ErrorKind::StaleVersion => {
            StatusCode::CONFLICT
        }
        ErrorKind::Unavailable | ErrorKind::Internal => return None,
    };
    let field = match err {
        CoreError::Invalid(v) => v.field.to_string(),
        _ => "form".to_owned(),
    };
    Some((status, field, err.to_string()))
}

/// Re-renders the page after a refused change, keeping `values`.
async fn refused(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    err: CoreError,
    values: BTreeMap<String, String>,
) -> Result<Response, UiError> {
    let Some((status, field, message)) = refusal(&err) else {
        return Err(err.into());
    };
    let extra = Extra {
        errors: BTreeMap::from([(field, message)]),
        values,
        new_token: None,
    };
    render(mesa, ui, user, extra, &ShowQuery::default(), status).await
}

fn back() -> Response {
    Redirect::to("/settings").into_response()
}

/// The instance form: every field of [`INSTANCE`] (unknown fields, like `_csrf`, ignored).
async fn save_instance(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    let values: Vec<(String, String)> = INSTANCE
        .iter()
        .filter_map(|(key, _, _)| {
            let v = form.get(*key)?.trim();
            // An empty time zone means UTC; other fields are required.
            let v = if v.is_empty() && *key == "budget_timezone" {
                "UTC"
            } else {
                v
            };
            Some(((*key).to_owned(), v.to_owned()))
        })
        .collect();
    if let Some((key, _)) = values
        .iter()
        .find(|(k, v)| v.is_empty() && k != "budget_timezone")
    {
        let err = CoreError::Invalid(mesa_core::domain::ValidationError::new(
            key.clone(),
            format!("{key} must not be empty"),
        ));
        return refused(&mesa, &ui, &user, err, values.into_iter().collect()).await;
    }
    match mesa.put_settings(&user.principal.actor, &values).await {
        Ok(_) => Ok(back()),
        Err(err) => refused(&mesa, &ui, &user, err, values.into_iter().collect()).await,
    }
}

/// `POST /settings/flags`: `flag` (a name of [`FEATURE_FLAGS`]) and `on` (`true`/`false`).
#[derive(Debug, Deserialize)]
struct FlagForm {
    flag: String,
    on: String,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

async fn toggle_flag(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<FlagForm>,
) -> Result<Response, UiError> {
    let values = vec![(format!("feature_{}", form.flag), form.on.clone())];
    match mesa.put_settings(&user.principal.actor, &values).await {
        Ok(_) => Ok(back()),
        // Shown above the flag list, whatever key the core named.
        Err(CoreError::Invalid(mut v)) => {
            v.field = "flag".into();
            refused(&mesa, &ui, &user, CoreError::Invalid(v), BTreeMap::new()).await
        }
        Err(err) => refused(&mesa, &ui, &user, err, BTreeMap::new()).await,
    }
}

/// The integrations form: non-secret values are stored as given; a secret is changed only when
/// its field is filled in, or cleared with its `clear_<key>` box.
async fn save_integrations(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    let mut values = Vec::new();
    for (key, _, secret) in INTEGRATIONS {
        let given = form.get(*key).map(|v| v.trim().to_owned());
        let clear = form.contains_key(&format!("clear_{key}"));
        match (secret, given) {
            (true, _) if clear => values.push(((*key).to_owned(), String::new())),
            (true, Some(v)) if !v.is_empty() => values.push(((*key).to_owned(), v)),
            (false, Some(v)) => values.push(((*key).to_owned(), v)),
            _ => {}
        }
    }
    if values.is_empty() {
        return Ok(back());
    }
    let kept = values
        .iter()
        .filter(|(k, _)| INTEGRATIONS.iter().any(|(i, _, s)| i == k && !s))
        .cloned()
        .collect();
    match mesa.put_settings(&user.principal.actor, &values).await {
        Ok(_) => Ok(back()),
        Err(err) => refused(&mesa, &ui, &user, err, kept).await,
    }
}

/// `POST /settings/budget`: the org's daily limits (0 = unlimited).
#[derive(Debug, Deserialize)]
struct BudgetForm {
    #[serde(default)]
    daily_cost_limit_usd: String,
    #[serde(default)]
    daily_token_limit: String,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

impl BudgetForm {
    fn limits(&self) -> Result<BudgetLimits, mesa_core::domain::ValidationError> {
        use mesa_core::domain::ValidationError;
        let cost_text = self.daily_cost_limit_usd.trim().trim_start_matches('$');
        let cost: f64 = if cost_text.is_empty() {
            0.0
        } else {
            cost_text.parse().map_err(|_| {
                ValidationError::new(
                    "daily_cost_limit_usd",
                    "daily_cost_limit_usd must be an amount in dollars, e.g. 25 or 12.50",
                )
            })?
        };
        let tokens_text = self.daily_token_limit.trim().replace('_', "");
        let tokens: i64 = if tokens_text.is_empty() {
            0
        } else {
            tokens_text.parse().map_err(|_| {
                ValidationError::new(
                    "daily_token_limit",
                    "daily_token_limit must be a whole number of tokens",
                )
            })?
        };
        Ok(BudgetLimits {
            daily_token_limit: tokens,
            daily_cost_limit_usd: MicroUsd::from_usd("daily_cost_limit_usd", cost)?,
            per_run_reserve_usd: None,
        })
    }
}

async fn save_budget(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<BudgetForm>,
) -> Result<Response, UiError> {
    let kept = BTreeMap::from([
        (
            "daily_cost_limit_usd".to_owned(),
            form.daily_cost_limit_usd.clone(),
        ),
        (
            "daily_token_limit".to_owned(),
            form.daily_token_limit.clone(),
        ),
    ]);
    let result = match form.limits() {
        Ok(mut limits) => {
            // Keep the per-run reservation the org already has.
            let current = mesa.org_budget(&user.principal.actor).await?;
            limits.per_run_reserve_usd = current.per_run_reserve_usd;
            mesa.put_budget(&user.principal.actor, None, limits).await
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(_) => Ok(back()),
        Err(err) => refused(&mesa, &ui, &user, err, kept).await,
    }
}

/// `POST /settings/tokens`: a name and an optional lifetime in days.
#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_days: String,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

/// Creates a board token and shows it once, in this response only (not through a redirect,
/// so the raw token is never in a URL or a later page).
async fn create_token(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<TokenForm>,
) -> Result<Response, UiError> {
    use mesa_core::domain::ValidationError;
    let kept = BTreeMap::from([
        ("token_name".to_owned(), form.name.clone()),
        ("expires_days".to_owned(), form.expires_days.clone()),
    ]);
    let parsed = Name::parse(form.name.trim())
        .map_err(|mut e| {
            e.field = "token_name".into();
            e
        })
        .and_then(|name| {
            let days = form.expires_days.trim();
            if days.is_empty() {
                return Ok((name, None));
            }
            match days.parse::<u32>() {
                Ok(d) if (1..=3650).contains(&d) => Ok((
                    name,
                    Some(Timestamp::from_millis(
                        mesa.now().as_millis() + i64::from(d) * DAY_MS,
                    )),
                )),
                _ => Err(ValidationError::new(
                    "expires_days",
                    "expires_days must be a number of days from 1 to 3650, or empty",
                )),
            }
        });
    let minted = match parsed {
        Ok((name, expires)) => {
            mesa.create_board_token(&user.principal.actor, name, expires)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match minted {
        Ok(m) => {
            let extra = Extra {
                new_token: Some(m.raw),
                ..Extra::default()
            };
            render(
                &mesa,
                &ui,
                &user,
                extra,
                &ShowQuery::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(err) => refused(&mesa, &ui, &user, err, kept).await,
    }
}

async fn revoke_token(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = ApiKeyId::parse(&id).map_err(|_| UiError::not_found("no such token"))?;
    let is_board = mesa
        .keys(None)
        .await?
        .iter()
        .any(|k| k.id == id && k.kind == ApiKeyKind::Board);
    if !is_board {
        return Err(UiError::not_found("no such board token"));
    }
    mesa.revoke_key(&user.principal.actor, id).await?;
    Ok(back())
}

/// Whether `name` is a backup file name this page makes (`mesa-backup-<digits>.db`): only such
/// names are shown back from the query string.
fn is_backup_name(name: &str) -> bool {
    name.strip_prefix("mesa-backup-")
        .and_then(|n| n.strip_suffix(".db"))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `POST /settings/backup`: a consistent copy of the live database in `<data dir>/backups/`,
/// then the database's integrity check; back to the page with both outcomes.
async fn backup(State(mesa): State<Mesa>, Board(user): Board) -> Result<Response, UiError> {
    if !user.principal.actor.is_board() {
        return Err(UiError::forbidden("only the board may back up"));
    }
    let dir = mesa.config().data_dir.join("backups");
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        tracing::error!(error = %e, "cannot create the backup directory");
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot create the backup directory",
        )
    })?;
    let mut stamp = mesa.now().as_millis();
    let name = loop {
        let name = format!("mesa-backup-{stamp}.db");
        if !tokio::fs::try_exists(dir.join(&name))
            .await
            .unwrap_or(false)
        {
            break name;
        }
        stamp += 1;
    };
    mesa.backup(&dir.join(&name)).await?;
    let check = mesa.integrity_check().await?;
    let ok = check.len() == 1 && check[0] == "ok";
    Ok(Redirect::to(&format!(
        "/settings?backup={name}&integrity={}",
        if ok { "ok" } else { "failed" }
    ))
    .into_response())
}
