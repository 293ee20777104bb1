//! The CEO's scripts: delegate an issue as two or three sub-issues for the team, keep it in a
//! work block (the active one, else a proposed one whose activation the board is asked to
//! approve), close it once its sub-issues are finished, and now and then ask the board for a
//! go-ahead.

use serde_json::{Value, json};

use super::Sim;
use super::api::{SimError, is_settled, is_terminal, items, text};
use super::rng::Rng;

/// Percent of delegations for which the CEO asks the board for a go-ahead.
const APPROVAL_PERCENT: u64 = 30;
/// Longest issue title the API accepts, in characters.
pub(super) const MAX_TITLE: usize = 200;

impl Sim {
    /// A CEO task run: delegate an issue without sub-issues; close one whose sub-issues are
    /// finished; otherwise post a status update.
    pub(super) async fn ceo_task(&mut self, key: &str) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let issue = &detail["issue"];
        let status = text(issue, "status");
        if is_settled(&status) {
            return Ok(format!("{key} is {status}: nothing to do"));
        }
        let children = detail["children"].as_array().cloned().unwrap_or_default();
        if children.is_empty() {
            return self.delegate(key, issue).await;
        }
        if children_finished(&children) {
            return self.close(key, &status, &children).await;
        }
        let update = status_update(&children);
        self.comment(key, "comment", &update).await?;
        Ok(format!("posted a status update on {key}"))
    }

    /// Checks the issue out, creates two or three sub-issues for the team and says so.
    async fn delegate(&mut self, key: &str, issue: &Value) -> Result<String, SimError> {
        if !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        self.think("planning the work with the team").await;
        let roster = items(&self.api.get("/api/v1/agents").await?);
        let team: Vec<Member> = roster
            .iter()
            .filter(|a| a["active"].as_bool() == Some(true))
            .map(|a| Member {
                slug: text(a, "slug"),
                archetype: text(a, "archetype"),
            })
            .filter(|m| m.archetype != "ceo" && m.slug != self.me && !m.slug.is_empty())
            .collect();
        if team.is_empty() {
            let note = "Nobody to delegate to: the team has no active agent besides me.";
            self.comment(key, "comment", note).await?;
            return Ok(format!("could not delegate {key}"));
        }
        let title = text(issue, "title");
        let priority = issue["priority"].as_i64().unwrap_or(0);
        let mut lines = Vec::new();
        for step in plan_steps(&mut self.rng) {
            let who = assignee_for(step, &team, &mut self.rng);
            let child = self.create_child(key, &title, priority, step, &who).await?;
            lines.push(format!("- {child} ({}) → @{who}", step.verb));
        }
        let body = format!(
            "Delegated {key} as {} sub-issues:\n{}\nI will close it when they are done.",
            lines.len(),
            lines.join("\n")
        );
        self.comment(key, "comment", &body).await?;
        if issue["work_block_id"].is_null() {
            self.plan_into_block(key, &title).await?;
        }
        if self.rng.chance(APPROVAL_PERCENT) {
            self.ask_go_ahead(key, &title).await?;
        }
        Ok(format!("delegated {key} in {} sub-issues", lines.len()))
    }

    /// Creates one sub-issue; a duplicate title (a retried run) reuses the existing issue.
    async fn create_child(
        &mut self,
        parent: &str,
        title: &str,
        priority: i64,
        step: &Step,
        who: &str,
    ) -> Result<String, SimError> {
        let body = json!({
            "title": child_title(step.verb, title),
            "description": format!(
                "{} for {parent}.\n\n## Acceptance Criteria\n- {}\n- evidence posted before submitting",
                step.verb, step.brief
            ),
            "assignee_slug": who,
            "parent_key": parent,
            "priority": priority,
        });
        match self.api.post("/api/v1/issues", &body).await {
            Ok(created) => {
                let child = text(&created, "key");
                self.say(format!("created {child} for @{who}")).await;
                Ok(child)
            }
            Err(e) if e.status() == Some(409) && e.detail("existing_key").is_some() => {
                Ok(e.detail("existing_key").unwrap_or_default())
            }
            Err(e) => Err(e),
        }
    }

    /// Puts a delegated issue in the active work block; without one, in a proposed block (made
    /// for it if there is none), and asks the board to activate that block unless an
    /// activation request is already pending (SPEC §3.1: activation is a board decision).
    async fn plan_into_block(&mut self, key: &str, title: &str) -> Result<(), SimError> {
        let active = items(&self.api.get("/api/v1/work-blocks?status=active").await?);
        if let Some(block) = active.first() {
            let id = text(block, "id");
            if self.add_to_block(&id, key).await? {
                self.say(format!("added {key} to the active block {id}"))
                    .await;
                return Ok(());
            }
        }
        let proposed = items(&self.api.get("/api/v1/work-blocks?status=proposed").await?);
        let id = match proposed.last() {
            Some(block) => text(block, "id"),
            None => {
                let body = json!({
                    "title": child_title("Deliver", title),
                    "goal": format!("Deliver {key} and what the board adds next."),
                });
                let block = self.api.post("/api/v1/work-blocks", &body).await?;
                let id = text(&block, "id");
                self.say(format!("proposed work block {id}")).await;
                id
            }
        };
        if !self.add_to_block(&id, key).await? {
            return Ok(());
        }
        let pending = items(&self.api.get("/api/v1/approvals?status=pending").await?);
        let asked = pending
            .iter()
            .any(|a| text(a, "kind") == "work_block_activation" && text(a, "subject_id") == id);
        if !asked {
            let path = format!("/api/v1/work-blocks/{id}");
            self.api
                .patch(&path, &json!({ "status": "active" }))
                .await?;
            self.say(format!("asked the board to activate block {id}"))
                .await;
        }
        Ok(())
    }

    /// Adds `key` to block `id`; false when the block no longer takes issues (409).
    async fn add_to_block(&mut self, id: &str, key: &str) -> Result<bool, SimError> {
        let path = format!("/api/v1/work-blocks/{id}/issues");
        match self.api.post(&path, &json!({ "issue_key": key })).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => {
                self.say(format!("block {id} did not take {key} ({e})"))
                    .await;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the board (the CEO's reviewer chain ends there) for a go-ahead on the plan.
    async fn ask_go_ahead(&mut self, key: &str, title: &str) -> Result<(), SimError> {
        let body = json!({
            "kind": "other",
            "title": child_title(&format!("Go-ahead on the plan for {key}"), title),
            "body": format!("I split {key} into sub-issues; work has started. Object if you disagree."),
            "subject_type": "issue",
            "subject_id": key,
        });
        self.api.post("/api/v1/approvals", &body).await?;
        self.say(format!("asked the board for a go-ahead on {key}"))
            .await;
        Ok(())
    }

    /// Submits a parent whose sub-issues are finished (the CEO's submit closes it, SPEC §2).
    /// A 409 means another run of mine moved it first.
    async fn close(
        &mut self,
        key: &str,
        status: &str,
        children: &[Value],
    ) -> Result<String, SimError> {
        if matches!(status, "todo" | "blocked") && !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        self.think(&format!("closing {key}")).await;
        let keys: Vec<String> = children.iter().map(|c| text(c, "key")).collect();
        let comment = format!(
            "All {} sub-issues are finished ({}); closing.",
            keys.len(),
            keys.join(", ")
        );
        let path = format!("/api/v1/issues/{key}");
        match self
            .api
            .patch(&path, &json!({ "status": "submit", "comment": comment }))
            .await
        {
            Ok(issue) => {
                let now = text(&issue, "status");
                self.say(format!("submitted {key}: now {now}")).await;
                Ok(format!("closed {key} ({now})"))
            }
            Err(e) if e.status() == Some(409) => {
                self.say(format!("{key} moved meanwhile ({e})")).await;
                Ok(format!("{key} moved meanwhile"))
            }
            Err(e) => Err(e),
        }
    }

    /// After the CEO reviewed a sub-issue: when that finished the last open sub-issue of a
    /// parent of mine, close the parent now. My own approval wakes nobody (SPEC §6.1), so
    /// nothing else would bring me back to it before my next heartbeat.
    pub(super) async fn close_parent_of(&mut self, key: &str) -> Result<(), SimError> {
        let path = format!("/api/v1/issues/{key}");
        let detail = self.api.get(&path).await?;
        let parent = text(&detail["issue"], "parent_key");
        if parent.is_empty() {
            return Ok(());
        }
        let path = format!("/api/v1/issues/{parent}");
        let up = self.api.get(&path).await?;
        let status = text(&up["issue"], "status");
        if text(&up["issue"], "assignee_slug") != self.me
            || !matches!(status.as_str(), "todo" | "in_progress")
        {
            return Ok(());
        }
        let children = up["children"].as_array().cloned().unwrap_or_default();
        if children_finished(&children) {
            self.close(&parent, &status, &children).await?;
        }
        Ok(())
    }

    /// The CEO's heartbeat: close every parent of mine whose sub-issues are finished. Comments
    /// on nothing.
    pub(super) async fn ceo_heartbeat(&mut self) -> Result<String, SimError> {
        self.think("reading my inbox").await;
        let inbox = items(&self.api.get("/api/v1/inbox?limit=500").await?);
        let mine: Vec<(String, String)> = inbox
            .iter()
            .filter(|i| text(i, "assignee_slug") == self.me)
            .filter(|i| matches!(text(i, "status").as_str(), "todo" | "in_progress"))
            .map(|i| (text(i, "key"), text(i, "status")))
            .collect();
        let mut closed = 0;
        for (key, status) in mine {
            let path = format!("/api/v1/issues/{key}");
            let detail = self.api.get(&path).await?;
            let children = detail["children"].as_array().cloned().unwrap_or_default();
            if children_finished(&children) {
                self.close(&key, &status, &children).await?;
                closed += 1;
            }
        }
        Ok(format!(
            "heartbeat: {} issues in the inbox, {closed} closed",
            inbox.len()
        ))
    }
}

/// A member of the team the CEO delegates to.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// Its slug.
    pub(super) slug: String,
    /// Its role.
    pub(super) archetype: String,
}

/// A kind of sub-issue, and the roles that do it best.
#[derive(Debug)]
pub(super) struct Step {
    /// First word of the sub-issue's title.
    pub(super) verb: &'static str,
    roles: &'static [&'static str],
    brief: &'static str,
}

/// The sub-issues the CEO may create; `Build` always, then one or two of the others.
pub(super) const STEPS: &[Step] = &[
    Step {
        verb: "Build",
        roles: &["fullstack", "backend", "frontend", "architect"],
        brief: "implement it end to end, with tests",
    },
    Step {
        verb: "Spec",
        roles: &["product"],
        brief: "user stories and acceptance criteria written down",
    },
    Step {
        verb: "Design",
        roles: &["designer"],
        brief: "the screens and their empty, loading and error states",
    },
    Step {
        verb: "Test",
        roles: &["qa"],
        brief: "checks covering the main path and the error paths",
    },
    Step {
        verb: "Ship",
        roles: &["devops"],
        brief: "deployed behind a flag, with a dashboard to watch",
    },
];

/// Two or three steps: `Build` and one or two others, in table order.
pub(super) fn plan_steps(rng: &mut Rng) -> Vec<&'static Step> {
    let extra = usize::try_from(rng.between(1, 2)).unwrap_or(1);
    let mut others: Vec<usize> = (1..STEPS.len()).collect();
    let mut chosen = vec![0];
    for _ in 0..extra {
        let i = usize::try_from(rng.below(others.len() as u64)).unwrap_or(0);
        chosen.push(others.remove(i));
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| &STEPS[i]).collect()
}

/// The team member for a step: one whose archetype fits, else anyone.
pub(super) fn assignee_for(step: &Step, team: &[Member], rng: &mut Rng) -> String {
    let fit: Vec<&Member> = team
        .iter()
        .filter(|m| step.roles.contains(&m.archetype.as_str()))
        .collect();
    if fit.is_empty() {
        rng.pick(team).slug.clone()
    } else {
        rng.pick(&fit).slug.clone()
    }
}

/// `<verb>: <parent title>`, cut to the API's title limit.
pub(super) fn child_title(verb: &str, parent: &str) -> String {
    let full = format!("{verb}: {parent}");
    full.chars().take(MAX_TITLE).collect()
}

/// True when every sub-issue is terminal and at least one is done.
pub(super) fn children_finished(children: &[Value]) -> bool {
    !children.is_empty()
        && children.iter().all(|c| is_terminal(&text(c, "status")))
        && children.iter().any(|c| text(c, "status") == "done")
}

pub(super) fn status_update(children: &[Value]) -> String {
    let done = children
        .iter()
        .filter(|c| text(c, "status") == "done")
        .count();
    let open: Vec<String> = children
        .iter()
        .filter(|c| !is_terminal(&text(c, "status")))
        .map(|c| format!("{} ({})", text(c, "key"), text(c, "status")))
        .collect();
    format!(
        "Status: {done} of {} sub-issues done; open: {}.",
        children.len(),
        open.join(", ")
    )
}
