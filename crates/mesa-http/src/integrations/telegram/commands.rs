//! The bot's commands as text: parsing a message into a [`Command`] (pure) and the help text.

/// A command sent to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/status`: runs, queue, spend today, pending approvals.
    Status,
    /// `/approvals`: the pending approvals, each with its buttons.
    Approvals,
    /// `/blocks`: the active and ready work blocks.
    Blocks,
    /// `/issue KEY`: one issue.
    Issue {
        /// The key as typed, upper-cased (`MESA-12`).
        key: String,
    },
    /// `/new <title>`: a new issue for the CEO; lines after the first are its description.
    New {
        /// The first line.
        title: String,
        /// The other lines.
        description: String,
    },
    /// `/pause`: pause the scheduler.
    Pause,
    /// `/resume`: resume the scheduler.
    Resume,
    /// `/help` (and `/start`, which Telegram sends on first contact).
    Help,
    /// A known command without its argument: the usage line to answer with.
    Usage(&'static str),
    /// A command the bot does not know (its name, lower-cased).
    Unknown(String),
}

/// The help text: every command, one a line.
pub const HELP: &str = "Mesa commands:\n\
/status - runs, queue, spend today, pending approvals\n\
/approvals - pending approvals, with Approve/Reject buttons\n\
/blocks - active and ready work blocks\n\
/issue KEY - one issue\n\
/new <title> - a new issue for the CEO (more lines: its description)\n\
/pause - pause the scheduler\n\
/resume - resume the scheduler\n\
/help - this list";

/// Reads a message as a command. `None` when it is not one (no leading `/`), or when it is
/// addressed to another bot (`/status@OtherBot` while this bot is `me`). Without `me`
/// (the bot's own username not known yet) every `@bot` suffix is accepted.
pub fn parse(text: &str, me: Option<&str>) -> Option<Command> {
    let text = text.trim_start();
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (name, bot) = match head.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (head, None),
    };
    if let (Some(bot), Some(me)) = (bot, me)
        && !bot.eq_ignore_ascii_case(me)
    {
        return None;
    }
    if name.is_empty() {
        return None;
    }
    let name = name.to_ascii_lowercase();
    Some(match name.as_str() {
        "status" => Command::Status,
        "approvals" => Command::Approvals,
        "blocks" => Command::Blocks,
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "help" | "start" => Command::Help,
        "issue" => match args.split_whitespace().next() {
            Some(key) => Command::Issue {
                key: key.to_ascii_uppercase(),
            },
            None => Command::Usage("/issue KEY"),
        },
        "new" => {
            let (title, description) = args.split_once('\n').unwrap_or((args, ""));
            let title = title.trim();
            if title.is_empty() {
                Command::Usage("/new <title>")
            } else {
                Command::New {
                    title: title.to_owned(),
                    description: description.trim().to_owned(),
                }
            }
        }
        _ => Command::Unknown(name),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn commands_with_and_without_arguments() {
        assert_eq!(parse("/status", None), Some(Command::Status));
        assert_eq!(parse("  /Approvals  ", None), Some(Command::Approvals));
        assert_eq!(parse("/blocks extra words", None), Some(Command::Blocks));
        assert_eq!(
            parse("/issue mesa-12", None),
            Some(Command::Issue {
                key: "MESA-12".to_owned()
            })
        );
        assert_eq!(parse("/issue", None), Some(Command::Usage("/issue KEY")));
        assert_eq!(
            parse("/new Fix login", None),
            Some(Command::New {
                title: "Fix login".to_owned(),
                description: String::new()
            })
        );
        assert_eq!(
            parse(
                "/new  Fix login \nThe button does nothing.\nOn Safari.",
                None
            ),
            Some(Command::New {
                title: "Fix login".to_owned(),
                description: "The button does nothing.\nOn Safari.".to_owned()
            })
        );
        assert_eq!(parse("/new   ", None), Some(Command::Usage("/new <title>")));
        assert_eq!(parse("/pause", None), Some(Command::Pause));
        assert_eq!(parse("/resume", None), Some(Command::Resume));
        assert_eq!(parse("/start", None), Some(Command::Help));
        assert_eq!(
            parse("/deploy now", None),
            Some(Command::Unknown("deploy".to_owned()))
        );
    }

    #[test]
    fn not_commands() {
        assert_eq!(parse("hello", None), None);
        assert_eq!(parse("", None), None);
        assert_eq!(parse("/", None), None);
        assert_eq!(parse("/@MesaBot", None), None);
        assert_eq!(parse("status /status", None), None);
    }

    #[test]
    fn bot_suffix() {
        assert_eq!(
            parse("/status@MesaBot", Some("mesabot")),
            Some(Command::Status)
        );
        assert_eq!(parse("/status@OtherBot", Some("MesaBot")), None);
        assert_eq!(parse("/status@AnyBot", None), Some(Command::Status));
        assert_eq!(
            parse("/new@MesaBot Fix login", Some("MesaBot")),
            Some(Command::New {
                title: "Fix login".to_owned(),
                description: String::new()
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>(), me in proptest::option::of("[a-zA-Z_]{0,8}")) {
            let _ = parse(&text, me.as_deref());
        }

        #[test]
        fn only_slash_messages_are_commands(text in any::<String>()) {
            if parse(&text, None).is_some() {
                prop_assert!(text.trim_start().starts_with('/'));
            }
        }

        #[test]
        fn new_keeps_the_first_line_as_title(title in "[A-Za-z0-9][A-Za-z0-9 ,.!?-]{0,60}") {
            let parsed = parse(&format!("/new {title}"), None);
            prop_assert_eq!(parsed, Some(Command::New {
                title: title.trim().to_owned(),
                description: String::new(),
            }));
        }
    }
}
