//! Messages as Telegram shows them (pure): notification texts within the message limit, and
//! the Approve/Reject buttons whose callback data names the approval.

use mesa_core::domain::entity::Approval;
use mesa_core::domain::{ApprovalDecision, ApprovalId};

use super::api::{Button, InlineKeyboard, OutgoingMessage};

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const MAX_TEXT: usize = 4096;

/// The callback data of a decision button: `approve:<uuid>` or `reject:<uuid>` (at most 44
/// bytes; Telegram allows 64).
pub fn callback_data(decision: ApprovalDecision, id: ApprovalId) -> String {
    format!("{}:{id}", decision.as_str())
}

/// Reads the callback data of a decision button.
pub fn parse_callback(data: &str) -> Option<(ApprovalDecision, ApprovalId)> {
    let (decision, id) = data.split_once(':')?;
    Some((
        ApprovalDecision::parse(decision).ok()?,
        ApprovalId::parse(id).ok()?,
    ))
}

/// The "Approve" / "Reject" button row of an approval.
pub fn approval_keyboard(id: ApprovalId) -> InlineKeyboard {
    let button = |text: &str, decision| Button {
        text: text.to_owned(),
        callback_data: callback_data(decision, id),
    };
    InlineKeyboard {
        inline_keyboard: vec![vec![
            button("Approve", ApprovalDecision::Approve),
            button("Reject", ApprovalDecision::Reject),
        ]],
    }
}

/// A notification: its title, its text and a link, each on its own paragraph, cut to the
/// message limit; with the decision buttons when it asks for an approval.
pub fn notification(
    title: &str,
    text: &str,
    link: Option<&str>,
    approval: Option<ApprovalId>,
) -> OutgoingMessage {
    let mut body = title.trim().to_owned();
    for part in [Some(text.trim()), link.map(str::trim)]
        .into_iter()
        .flatten()
    {
        if !part.is_empty() && part != body {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(part);
        }
    }
    OutgoingMessage {
        text: truncate(&body, MAX_TEXT),
        reply_markup: approval.map(approval_keyboard),
    }
}

/// A pending approval as `/approvals` lists it, with its buttons.
pub fn approval(approval: &Approval, link: Option<&str>) -> OutgoingMessage {
    let title = format!(
        "Approval requested ({}): {}",
        approval.kind.as_str(),
        approval.title
    );
    notification(&title, approval.body.as_str(), link, Some(approval.id))
}

/// The text of a decided approval's message: what it said, then the outcome.
pub fn decided(original: Option<&str>, outcome: &str) -> String {
    match original {
        Some(text) if !text.is_empty() => {
            let tail = format!("\n\n{outcome}");
            let room = MAX_TEXT.saturating_sub(utf16_len(&tail));
            format!("{}{tail}", truncate(text, room))
        }
        _ => truncate(outcome, MAX_TEXT),
    }
}

/// `text` cut to at most `max` UTF-16 code units (Telegram's measure), ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_owned();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > budget {
            break;
        }
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id() -> ApprovalId {
        ApprovalId::parse("0190f3c2-7b1a-7cde-8f00-0123456789ab").unwrap()
    }

    #[test]
    fn buttons_name_the_approval_within_64_bytes() {
        let kb = approval_keyboard(id());
        let row = &kb.inline_keyboard[0];
        assert_eq!(row[0].text, "Approve");
        assert_eq!(
            row[0].callback_data,
            "approve:0190f3c2-7b1a-7cde-8f00-0123456789ab"
        );
        assert!(row.iter().all(|b| b.callback_data.len() <= 64));
        assert_eq!(
            parse_callback(&row[1].callback_data),
            Some((ApprovalDecision::Reject, id()))
        );
        assert_eq!(parse_callback("approve:nope"), None);
        assert_eq!(
            parse_callback("maybe:0190f3c2-7b1a-7cde-8f00-0123456789ab"),
            None
        );
    }

    #[test]
    fn notifications_join_their_parts() {
        let m = notification(
            "Budget paused",
            "ceo hit its limit",
            Some("http://x/agents"),
            None,
        );
        assert_eq!(
            m.text,
            "Budget paused\n\nceo hit its limit\n\nhttp://x/agents"
        );
        assert!(m.reply_markup.is_none());
        let m = notification("Approve?", "", None, Some(id()));
        assert_eq!(m.text, "Approve?");
        assert!(m.reply_markup.is_some());
    }

    #[test]
    fn long_texts_are_cut_to_the_limit() {
        let m = notification("t", &"é".repeat(5000), None, None);
        assert_eq!(utf16_len(&m.text), MAX_TEXT);
        assert!(m.text.ends_with('…'));
        let d = decided(Some(&"x".repeat(5000)), "Approved by telegram:ana");
        assert!(utf16_len(&d) <= MAX_TEXT);
        assert!(d.ends_with("Approved by telegram:ana"));
    }

    proptest! {
        #[test]
        fn truncation_stays_within_the_limit(text in any::<String>(), max in 0usize..64) {
            let cut = truncate(&text, max);
            prop_assert!(utf16_len(&cut) <= max);
            if utf16_len(&text) <= max {
                prop_assert_eq!(cut, text);
            }
        }

        #[test]
        fn callback_data_never_panics(data in any::<String>()) {
            let _ = parse_callback(&data);
        }
    }
}
