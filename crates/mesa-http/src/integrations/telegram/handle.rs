//! What the bot does with an update: button presses resolve approvals, commands run against the
//! core as `telegram:<user>`; anything from a chat or user that is not allowed changes nothing
//! and is logged (a `tracing` warning naming the chat and user ids).

use mesa_core::domain::entity::WorkBlock;
use mesa_core::domain::{Actor, ApprovalStatus, IssueKey, Markdown, RunStatus, WorkBlockStatus};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{ErrorKind, Mesa, NewIssue};

use super::api::{BotApi, CallbackQuery, Message, OutgoingMessage, Update};
use super::commands::{self, Command, HELP};
use super::config::TelegramConfig;
use super::render;

/// What an update is handled with.
pub(crate) struct Context<'a> {
    pub(crate) mesa: &'a Mesa,
    pub(crate) api: &'a BotApi,
    pub(crate) config: &'a TelegramConfig,
    /// The bot's own username (from `getMe`), to skip commands addressed to other bots.
    pub(crate) me: Option<&'a str>,
}

/// Handles one update. Failures to answer are logged: replies are not queued (notifications
/// are, in the outbox).
pub(crate) async fn update(ctx: &Context<'_>, update: Update) {
    if let Some(query) = update.callback_query {
        callback(ctx, query).await;
    } else if let Some(message) = update.message {
        message_in(ctx, message).await;
    }
}

async fn callback(ctx: &Context<'_>, query: CallbackQuery) {
    let chat = query.message.as_ref().map(|m| m.chat.id);
    if !ctx.config.obeys(chat, &query.from) {
        tracing::warn!(
            chat_id = ?chat,
            user_id = query.from.id,
            username = ?query.from.username,
            data = ?query.data,
            "telegram: ignored a button press from a chat or user that is not allowed"
        );
        answer(ctx, &query.id, "Not allowed.").await;
        return;
    }
    let Some((decision, id)) = query.data.as_deref().and_then(render::parse_callback) else {
        answer(ctx, &query.id, "Unknown button.").await;
        return;
    };
    let actor = Actor::Telegram {
        user: query.from.display_name(),
    };
    let outcome = match ctx.mesa.resolve_approval(&actor, id, decision, None).await {
        Ok(a) => format!("{} by {actor}.", decided_word(a.status)),
        Err(e) if e.kind() == ErrorKind::Conflict => match ctx.mesa.approval(id).await {
            Ok(a) => format!("Already {}.", a.status.as_str()),
            Err(_) => format!("Could not decide: {e}"),
        },
        Err(e) => {
            tracing::warn!(error = %e, approval = %id, "telegram: resolving an approval failed");
            answer(ctx, &query.id, &format!("Could not decide: {e}")).await;
            return;
        }
    };
    answer(ctx, &query.id, &outcome).await;
    if let Some(message) = &query.message {
        let text = render::decided(message.text.as_deref(), &outcome);
        if let Err(e) = ctx
            .api
            .edit_text(message.chat.id, message.message_id, &text)
            .await
        {
            tracing::warn!(error = %e, "telegram: could not edit the approval message");
        }
    }
}

fn decided_word(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Approved => "Approved",
        ApprovalStatus::Rejected => "Rejected",
        ApprovalStatus::Expired => "Expired",
        ApprovalStatus::Cancelled => "Cancelled",
        ApprovalStatus::Pending => "Still pending",
    }
}

async fn answer(ctx: &Context<'_>, query_id: &str, text: &str) {
    if let Err(e) = ctx.api.answer_callback(query_id, text).await {
        tracing::warn!(error = %e, "telegram: could not answer a button press");
    }
}

async fn message_in(ctx: &Context<'_>, message: Message) {
    let Some(command) = message
        .text
        .as_deref()
        .and_then(|t| commands::parse(t, ctx.me))
    else {
        return;
    };
    let chat = message.chat.id;
    let from = message.from.as_ref();
    let Some(from) = from.filter(|u| ctx.config.obeys(Some(chat), u)) else {
        tracing::warn!(
            chat_id = chat,
            user_id = ?from.map(|u| u.id),
            username = ?from.and_then(|u| u.username.as_deref()),
            command = ?command,
            "telegram: ignored a command from a chat or user that is not allowed"
        );
        return;
    };
    let actor = Actor::Telegram {
        user: from.display_name(),
    };
    for reply in run(ctx.mesa, &actor, command).await {
        if let Err(e) = ctx.api.send_message(chat, &reply).await {
            tracing::warn!(error = %e, "telegram: could not answer a command");
        }
    }
}

/// Runs a command as `actor`; the messages to answer with.
pub(crate) async fn run(mesa: &Mesa, actor: &Actor, command: Command) -> Vec<OutgoingMessage> {
    let result = match command {
        Command::Status => status(mesa).await.map(|t| one(&t)),
        Command::Approvals => approvals(mesa).await,
        Command::Blocks => blocks(mesa).await.map(|t| one(&t)),
        Command::Issue { key } => issue(mesa, &key).await.map(|t| one(&t)),
        Command::New { title, description } => new_issue(mesa, actor, &title, &description)
            .await
            .map(|t| one(&t)),
        Command::Pause | Command::Resume => {
            let pause = command == Command::Pause;
            mesa.set_scheduler_paused(actor, pause).await.map(|paused| {
                one(if paused {
                    "Scheduler paused: no new runs start until /resume."
                } else {
                    "Scheduler running."
                })
            })
        }
        Command::Help => Ok(one(HELP)),
        Command::Usage(usage) => Ok(one(&format!("Usage: {usage}"))),
        Command::Unknown(name) => Ok(one(&format!("Unknown command /{name}.\n\n{HELP}"))),
    };
    result.unwrap_or_else(|e| one(&format!("Failed: {e}")))
}

fn one(text: &str) -> Vec<OutgoingMessage> {
    vec![OutgoingMessage::text(render::truncate(
        text,
        render::MAX_TEXT,
    ))]
}

async fn count_runs(mesa: &Mesa, status: RunStatus) -> mesa_core::Result<String> {
    let page = mesa
        .runs(
            &RunFilter {
                statuses: vec![status],
                ..RunFilter::default()
            },
            &PageRequest::all(),
        )
        .await?;
    let more = if page.next_cursor.is_some() { "+" } else { "" };
    Ok(format!("{}{more}", page.items.len()))
}

async fn status(mesa: &Mesa) -> mesa_core::Result<String> {
    let paused = mesa.scheduler_paused().await;
    let running = count_runs(mesa, RunStatus::Running).await?;
    let queued = count_runs(mesa, RunStatus::Queued).await?;
    let usage = mesa.usage_summary(None).await?;
    let pending = mesa
        .approvals(Some(ApprovalStatus::Pending), &PageRequest::all())
        .await?;
    let more = if pending.next_cursor.is_some() {
        "+"
    } else {
        ""
    };
    Ok(format!(
        "{}\nScheduler: {}\nRuns: {running} running, {queued} queued\nSpend today: {} ({} tokens)\nPending approvals: {}{more}",
        mesa.settings().await.instance_name(),
        if paused { "paused" } else { "running" },
        usage.today.cost_usd,
        usage.today.tokens,
        pending.items.len(),
    ))
}

/// How many pending approvals `/approvals` shows (one message each).
const APPROVALS_SHOWN: u32 = 10;

async fn approvals(mesa: &Mesa) -> mesa_core::Result<Vec<OutgoingMessage>> {
    let page = mesa
        .approvals(
            Some(ApprovalStatus::Pending),
            &PageRequest::new(Some(APPROVALS_SHOWN), None),
        )
        .await?;
    if page.items.is_empty() {
        return Ok(one("No pending approvals."));
    }
    let link = dashboard_link(mesa, "/approvals").await;
    let mut out: Vec<OutgoingMessage> = page
        .items
        .iter()
        .map(|a| render::approval(a, link.as_deref()))
        .collect();
    if page.next_cursor.is_some() {
        out.push(OutgoingMessage::text(format!(
            "Only the first {APPROVALS_SHOWN} are shown."
        )));
    }
    Ok(out)
}

async fn blocks(mesa: &Mesa) -> mesa_core::Result<String> {
    let mut lines = Vec::new();
    for status in [WorkBlockStatus::Active, WorkBlockStatus::Ready] {
        let list: Vec<WorkBlock> = mesa.work_blocks(Some(status)).await?;
        lines.extend(
            list.iter()
                .map(|b| format!("• [{}] {}", status.as_str(), b.title)),
        );
    }
    Ok(if lines.is_empty() {
        "No active or ready work blocks.".to_owned()
    } else {
        format!("Work blocks:\n{}", lines.join("\n"))
    })
}

async fn issue(mesa: &Mesa, key: &str) -> mesa_core::Result<String> {
    let key = IssueKey::parse(key)?;
    let view = match mesa.issue(&key).await {
        Ok(view) => view,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(format!("No issue {key}.")),
        Err(e) => return Err(e),
    };
    let assignee = view.assignee_slug.as_ref().map_or("nobody", |s| s.as_str());
    let mut text = format!(
        "{key}: {}\nStatus: {}\nAssignee: {assignee}",
        view.issue.title,
        view.issue.status.as_str()
    );
    if let Some(link) = dashboard_link(mesa, &format!("/issues/{key}")).await {
        text.push('\n');
        text.push_str(&link);
    }
    Ok(text)
}

async fn new_issue(
    mesa: &Mesa,
    actor: &Actor,
    title: &str,
    description: &str,
) -> mesa_core::Result<String> {
    let mut new = NewIssue::titled(title)?;
    new.description = Markdown::parse(description)?;
    // The CEO takes issues from the board; named explicitly so the reply can say who.
    let ceo = mesa.ceo().await?;
    new.assignee = ceo.as_ref().map(|a| a.slug.as_str().to_owned());
    let view = mesa.create_issue(actor, new).await?;
    let assignee = view.assignee_slug.as_ref().map_or("nobody", |s| s.as_str());
    let mut text = format!(
        "Created {}: {} (assigned to {assignee})",
        view.issue.key, view.issue.title
    );
    if let Some(link) = dashboard_link(mesa, &format!("/issues/{}", view.issue.key)).await {
        text.push('\n');
        text.push_str(&link);
    }
    Ok(text)
}

/// A dashboard URL under the `public_url` setting, if one is set.
async fn dashboard_link(mesa: &Mesa, path: &str) -> Option<String> {
    let base = mesa.setting_value("public_url").await?;
    let base = base.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}{path}"))
}

#[cfg(test)]
mod tests {
    use mesa_core::domain::ApprovalDecision;

    use super::*;

    #[test]
    fn decisions_read_as_outcomes() {
        assert_eq!(decided_word(ApprovalStatus::Approved), "Approved");
        assert_eq!(decided_word(ApprovalStatus::Rejected), "Rejected");
    }

    #[test]
    fn the_decision_type_round_trips_through_buttons() {
        let id =
            mesa_core::domain::ApprovalId::parse("0190f3c2-7b1a-7cde-8f00-0123456789ab").unwrap();
        for d in [ApprovalDecision::Approve, ApprovalDecision::Reject] {
            assert_eq!(
                render::parse_callback(&render::callback_data(d, id)),
                Some((d, id))
            );
        }
    }
}
