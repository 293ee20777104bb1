//! The shape of every accepted decision: the new status, the effects to carry out, and the
//! activity row to append.

/// One line of the audit log, minus what the caller knows (time, actor string, entity id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// What happened, `<entity>.<command>`: `issue.submit`, `work_block.ship`, `run.fail`...
    pub action: &'static str,
    /// One human line, e.g. `MESA-7: in_progress → in_review (submit by alice)`.
    pub summary: String,
}

/// An accepted decision. `S` is the status type, `E` the machine's effect type.
///
/// The caller writes the new status and performs `effects` in order, in one transaction where
/// the effect is a write, then appends `activity` and publishes events after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<S, E> {
    /// The status before; `None` for a creation.
    pub from: Option<S>,
    /// The status after. Equal to `from` for decisions that change no status (an idempotent
    /// checkout, an agent's request that becomes an approval, adding an issue to a block).
    pub to: S,
    /// What the caller must do besides writing `to`.
    pub effects: Vec<E>,
    /// The audit-log row.
    pub activity: Activity,
}

impl<S: Copy + PartialEq, E> Transition<S, E> {
    pub(crate) fn new(from: Option<S>, to: S, action: &'static str, summary: String) -> Self {
        Transition {
            from,
            to,
            effects: Vec::new(),
            activity: Activity { action, summary },
        }
    }

    /// True when the status changes (a creation counts as a change).
    pub fn changes_status(&self) -> bool {
        self.from != Some(self.to)
    }

    /// True when there is nothing to write at all.
    pub fn is_noop(&self) -> bool {
        !self.changes_status() && self.effects.is_empty()
    }

    pub(crate) fn push(&mut self, effect: E) {
        self.effects.push(effect);
    }
}
