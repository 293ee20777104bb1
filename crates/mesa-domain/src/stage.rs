//! An issue's optional checklist of stages (SPEC §2, "Stages").

use crate::ValidationError;
use crate::value::clip;

/// Whether a stage is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not finished yet.
    Todo,
    /// Finished.
    Done,
}

/// One stage. Ids are the 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Position, 1..=n.
    pub id: u32,
    /// What the stage is, one line, 1..200 characters.
    pub title: String,
    /// Whether it is finished.
    pub status: StageStatus,
}

/// A stage as given by a caller, before validation: ids are optional but must match the position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// Optional id; if given it must equal the 1-based position.
    #[serde(default)]
    pub id: Option<i64>,
    /// The stage title.
    pub title: String,
    /// `todo` (default) or `done`.
    #[serde(default = "todo")]
    pub status: StageStatus,
}

fn todo() -> StageStatus {
    StageStatus::Todo
}

/// The most stages an issue may have.
pub const MAX_STAGES: usize = 50;

/// A valid checklist: ids 1..n in order, non-empty titles, and no `done` after a `todo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Stages(Vec<Stage>);

impl Stages {
    /// No stages.
    pub const fn empty() -> Self {
        Stages(Vec::new())
    }

    /// Validates caller input, naming the offending element (`stages[2].title`).
    pub fn parse(items: Vec<StageInput>) -> Result<Self, ValidationError> {
        if items.len() > MAX_STAGES {
            return Err(ValidationError::new(
                "stages",
                format!(
                    "stages must have at most {MAX_STAGES} items, got {}",
                    items.len()
                ),
            ));
        }
        let mut seen_todo = false;
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let position = u32::try_from(index + 1).expect("at most MAX_STAGES items");
            if let Some(id) = item.id
                && id != i64::from(position)
            {
                return Err(ValidationError::new(
                    format!("stages[{index}].id"),
                    format!(
                        "stage ids must be 1..n in order: stages[{index}].id must be {position}, \
                         got {id}"
                    ),
                ));
            }
            let title = item.title.trim();
            let field = format!("stages[{index}].title");
            if title.is_empty() {
                return Err(ValidationError::new(
                    field.clone(),
                    format!("{field} must not be empty"),
                ));
            }
            if title.chars().count() > 200 || title.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    field.clone(),
                    format!(
                        "{field} must be one line of at most 200 characters, got {:?}",
                        clip(title)
                    ),
                ));
            }
            match item.status {
                StageStatus::Todo => seen_todo = true,
                StageStatus::Done if seen_todo => {
                    return Err(ValidationError::new(
                        format!("stages[{index}].status"),
                        format!(
                            "stages[{index}] is done after a stage that is still todo; stages are \
                             finished in order"
                        ),
                    ));
                }
                StageStatus::Done => {}
            }
            out.push(Stage {
                id: position,
                title: title.to_owned(),
                status: item.status,
            });
        }
        Ok(Stages(out))
    }

    /// Re-validates stored stages (used when loading from storage).
    pub fn from_stored(stages: Vec<Stage>) -> Result<Self, ValidationError> {
        Self::parse(
            stages
                .into_iter()
                .map(|s| StageInput {
                    id: Some(i64::from(s.id)),
                    title: s.title,
                    status: s.status,
                })
                .collect(),
        )
    }

    /// Builds todo stages from titles (the `Stages: [A], [B]` comment form).
    pub fn from_titles<I, S>(titles: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::parse(
            titles
                .into_iter()
                .map(|t| StageInput {
                    id: None,
                    title: t.into(),
                    status: StageStatus::Todo,
                })
                .collect(),
        )
    }

    /// The stages in order.
    pub fn as_slice(&self) -> &[Stage] {
        &self.0
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `todo` stage's id, or n when all are done; `None` without stages.
    pub fn current(&self) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .iter()
            .find(|s| s.status == StageStatus::Todo)
            .map(|s| s.id)
            .or_else(|| self.0.last().map(|s| s.id))
    }

    /// Number of stages done.
    pub fn done_count(&self) -> usize {
        self.0
            .iter()
            .filter(|s| s.status == StageStatus::Done)
            .count()
    }

    /// Percentage done, rounded down; 0 without stages.
    pub fn progress_percent(&self) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        u32::try_from(self.done_count() * 100 / self.0.len()).expect("at most 100")
    }

    /// Marks stages 1..=n done (`Stage N: ... - Complete`). `n` outside 1..=len is an error
    /// naming `field`.
    pub fn complete_through(&self, n: i64, field: &'static str) -> Result<Stages, ValidationError> {
        let len = self.0.len();
        let n_ok = usize::try_from(n).ok().filter(|n| (1..=len).contains(n));
        let Some(n) = n_ok else {
            return Err(ValidationError::new(
                field,
                if len == 0 {
                    format!("stage {n} does not exist: the issue has no stages")
                } else {
                    format!("stage {n} does not exist: the issue has stages 1 to {len}")
                },
            ));
        };
        let mut next = self.0.clone();
        for s in &mut next[..n] {
            s.status = StageStatus::Done;
        }
        Ok(Stages(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(id: Option<i64>, title: &str, done: bool) -> StageInput {
        StageInput {
            id,
            title: title.into(),
            status: if done {
                StageStatus::Done
            } else {
                StageStatus::Todo
            },
        }
    }

    #[test]
    fn valid_checklist() {
        let s = Stages::parse(vec![
            input(Some(1), "Design", true),
            input(None, "Build", false),
        ])
        .unwrap();
        assert_eq!(s.current(), Some(2));
        assert_eq!(s.progress_percent(), 50);
        let all = s.complete_through(2, "body").unwrap();
        assert_eq!(all.current(), Some(2));
        assert_eq!(all.progress_percent(), 100);
        assert_eq!(Stages::empty().current(), None);
    }

    #[test]
    fn ids_out_of_order_are_refused() {
        let err = Stages::parse(vec![input(Some(2), "A", false), input(Some(1), "B", false)])
            .unwrap_err();
        assert_eq!(err.field, "stages[0].id");
    }

    #[test]
    fn done_after_todo_is_refused() {
        let err = Stages::parse(vec![input(None, "A", false), input(None, "B", true)]).unwrap_err();
        assert_eq!(err.field, "stages[1].status");
    }

    #[test]
    fn empty_title_is_refused() {
        let err = Stages::parse(vec![input(None, " ", false)]).unwrap_err();
        assert_eq!(err.field, "stages[0].title");
        assert_eq!(err.message, "stages[0].title must not be empty");
    }

    #[test]
    fn complete_out_of_range() {
        let s = Stages::from_titles(["A", "B"]).unwrap();
        assert!(s.complete_through(0, "body").is_err());
        assert!(s.complete_through(3, "body").is_err());
    }
}
