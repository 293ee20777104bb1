//! The scheduler's decisions as pure functions (SPEC §6.2, §6.3, §6.5).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mesa_domain::{AgentId, IssueKey, RunId, Timestamp};

/// A queued run, as dispatch sees it. Candidates come in queue order (priority, trigger rank,
/// age), which [`plan`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The run.
    pub run_id: RunId,
    /// Its agent.
    pub agent_id: AgentId,
    /// Its issue, if any.
    pub issue_key: Option<IssueKey>,
    /// Earliest start (a re-queued wake-up after a quota pause).
    pub not_before: Option<Timestamp>,
}

/// What dispatch needs to know about an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentGate {
    /// Inactive agents never start.
    pub active: bool,
    /// Budget, quota or loop-guard pause.
    pub paused_until: Option<Timestamp>,
    /// Runs of this agent allowed at once.
    pub max_concurrent_runs: u32,
}

/// What is running now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    /// Running runs on this node.
    pub running: u32,
    /// Running runs per agent.
    pub per_agent: HashMap<AgentId, u32>,
    /// (agent, issue) pairs with a running run: a queued follow-up waits for it (SPEC §6.1).
    pub pairs: HashSet<(AgentId, Option<IssueKey>)>,
}

/// Why a candidate was not picked (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The board paused the scheduler.
    SchedulerPaused,
    /// The agent is unknown or deactivated.
    AgentInactive,
    /// The agent is paused until a time.
    AgentPaused,
    /// The run may not start yet.
    NotBefore,
    /// The same agent is running for the same issue; this is its follow-up.
    FollowUp,
    /// The agent has `max_concurrent_runs` running.
    AgentCap,
    /// The node has its global cap running.
    GlobalCap,
}

/// The plan of one dispatch pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Runs to start, in order.
    pub start: Vec<RunId>,
    /// Runs left queued, with the reason.
    pub held: Vec<(RunId, Held)>,
}

/// Picks the queued runs that may start now (SPEC §6.2): scheduler not paused; agent active and
/// not paused; `not_before` passed; no run of the same (agent, issue) running; fewer than the
/// agent's `max_concurrent_runs` and the node's `global_cap` running. Budget is checked later, at
/// start, in the same transaction as the reservation.
pub fn plan(
    queued: &[Candidate],
    agents: &HashMap<AgentId, AgentGate>,
    load: &Load,
    global_cap: u32,
    paused: bool,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let mut load = load.clone();
    for c in queued {
        let held = if paused {
            Some(Held::SchedulerPaused)
        } else {
            match agents.get(&c.agent_id) {
                None => Some(Held::AgentInactive),
                Some(a) if !a.active => Some(Held::AgentInactive),
                Some(a) if a.paused_until.is_some_and(|t| t > now) => Some(Held::AgentPaused),
                Some(_) if c.not_before.is_some_and(|t| t > now) => Some(Held::NotBefore),
                Some(_) if load.pairs.contains(&(c.agent_id, c.issue_key.clone())) => {
                    Some(Held::FollowUp)
                }
                Some(a)
                    if load.per_agent.get(&c.agent_id).copied().unwrap_or(0)
                        >= a.max_concurrent_runs.max(1) =>
                {
                    Some(Held::AgentCap)
                }
                Some(_) if load.running >= global_cap => Some(Held::GlobalCap),
                Some(_) => None,
            }
        };
        match held {
            Some(h) => out.held.push((c.run_id, h)),
            None => {
                load.running += 1;
                *load.per_agent.entry(c.agent_id).or_default() += 1;
                load.pairs.insert((c.agent_id, c.issue_key.clone()));
                out.start.push(c.run_id);
            }
        }
    }
    out
}

/// The shortest quota back-off.
pub const QUOTA_BACKOFF_MIN: Duration = Duration::from_secs(60);
/// The longest quota back-off, and the longest pause a provider's reset time may ask for.
pub const QUOTA_BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// Until when a quota or rate-limit error pauses an agent (SPEC §6.5): the provider's reset
/// time when it gave one in the future (at most a day away), else an exponential back-off from
/// 1 min to 1 h by the number of consecutive quota failures before this one (`streak`).
pub fn quota_pause_until(retry_at: Option<Timestamp>, streak: u32, now: Timestamp) -> Timestamp {
    match retry_at {
        Some(t) if t > now => t.min(now + Duration::from_secs(86_400)),
        _ => {
            let factor = 1_u64 << streak.min(6);
            let secs = (QUOTA_BACKOFF_MIN.as_secs() * factor).min(QUOTA_BACKOFF_MAX.as_secs());
            now + Duration::from_secs(secs)
        }
    }
}

/// The per-agent loop guard (SPEC §6.5): `true` when starting another run would make more
/// than `max_per_hour` runs in the last hour. Free runners never count (the caller leaves
/// them out of `started_last_hour`).
pub fn loop_guard_trips(started_last_hour: u32, max_per_hour: u32) -> bool {
    max_per_hour > 0 && started_last_hour >= max_per_hour
}

/// Whether an agent's heartbeat is due (SPEC §6.3): enabled and `interval` passed since the
/// last heartbeat check (`None`: never checked, due now). Due is not a run: the caller checks
/// for work first, and an idle heartbeat starts nothing.
pub fn heartbeat_due(
    enabled: bool,
    interval: Duration,
    last_check: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    enabled && last_check.is_none_or(|t| now.since(t) >= interval.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentId {
        AgentId::from(uuid_like())
    }

    fn uuid_like() -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    fn run() -> RunId {
        RunId::from(uuid_like())
    }

    fn key(s: &str) -> Option<IssueKey> {
        Some(IssueKey::parse(s).unwrap())
    }

    fn gate(max: u32) -> AgentGate {
        AgentGate {
            active: true,
            paused_until: None,
            max_concurrent_runs: max,
        }
    }

    fn cand(agent: AgentId, issue: Option<IssueKey>) -> Candidate {
        Candidate {
            run_id: run(),
            agent_id: agent,
            issue_key: issue,
            not_before: None,
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    #[test]
    fn caps_hold_the_rest_in_queue_order() {
        let (a, b) = (agent(), agent());
        let agents = HashMap::from([(a, gate(2)), (b, gate(1))]);
        let q = vec![
            cand(a, key("MESA-1")),
            cand(b, key("MESA-2")),
            cand(a, key("MESA-3")),
            cand(b, key("MESA-4")),
            cand(a, key("MESA-5")),
        ];
        let p = plan(&q, &agents, &Load::default(), 4, false, NOW);
        assert_eq!(p.start, vec![q[0].run_id, q[1].run_id, q[2].run_id]);
        assert_eq!(
            p.held,
            vec![(q[3].run_id, Held::AgentCap), (q[4].run_id, Held::AgentCap)]
        );
        let p = plan(&q, &agents, &Load::default(), 2, false, NOW);
        assert_eq!(p.start, vec![q[0].run_id, q[1].run_id]);
        assert_eq!(p.held[0], (q[2].run_id, Held::GlobalCap));
    }

    #[test]
    fn pauses_follow_ups_and_not_before_hold() {
        let (a, b, c) = (agent(), agent(), agent());
        let mut paused = gate(1);
        paused.paused_until = Some(Timestamp::from_millis(2_000_000));
        let mut inactive = gate(1);
        inactive.active = false;
        let agents = HashMap::from([(a, gate(3)), (b, paused), (c, inactive)]);
        let mut later = cand(a, key("MESA-9"));
        later.not_before = Some(Timestamp::from_millis(1_500_000));
        let q = vec![
            cand(a, key("MESA-1")),
            cand(b, key("MESA-2")),
            cand(c, key("MESA-3")),
            later.clone(),
            cand(agent(), None),
        ];
        let load = Load {
            running: 1,
            per_agent: HashMap::from([(a, 1)]),
            pairs: HashSet::from([(a, key("MESA-1"))]),
        };
        let p = plan(&q, &agents, &load, 4, false, NOW);
        assert!(p.start.is_empty());
        let reasons: Vec<Held> = p.held.iter().map(|h| h.1).collect();
        assert_eq!(
            reasons,
            vec![
                Held::FollowUp,
                Held::AgentPaused,
                Held::AgentInactive,
                Held::NotBefore,
                Held::AgentInactive
            ]
        );
        let p = plan(&q, &agents, &Load::default(), 4, true, NOW);
        assert!(p.held.iter().all(|h| h.1 == Held::SchedulerPaused));
    }

    #[test]
    fn quota_pauses_back_off_and_honour_reset_times() {
        let m = |s: u64| NOW + Duration::from_secs(s);
        assert_eq!(quota_pause_until(None, 0, NOW), m(60));
        assert_eq!(quota_pause_until(None, 1, NOW), m(120));
        assert_eq!(quota_pause_until(None, 5, NOW), m(1920));
        assert_eq!(quota_pause_until(None, 6, NOW), m(3600));
        assert_eq!(quota_pause_until(None, 60, NOW), m(3600));
        assert_eq!(quota_pause_until(Some(m(500)), 3, NOW), m(500));
        assert_eq!(quota_pause_until(Some(NOW), 0, NOW), m(60));
        assert_eq!(quota_pause_until(Some(m(10 * 86_400)), 0, NOW), m(86_400));
    }

    #[test]
    fn loop_guard_and_heartbeats() {
        assert!(!loop_guard_trips(29, 30));
        assert!(loop_guard_trips(30, 30));
        assert!(!loop_guard_trips(1_000, 0));
        let i = Duration::from_secs(300);
        assert!(heartbeat_due(true, i, None, NOW));
        assert!(!heartbeat_due(false, i, None, NOW));
        assert!(!heartbeat_due(
            true,
            i,
            Some(NOW - Duration::from_secs(299)),
            NOW
        ));
        assert!(heartbeat_due(true, i, Some(NOW - i), NOW));
    }

    proptest::proptest! {
        #[test]
        fn a_plan_never_breaks_a_cap(
            caps in proptest::collection::vec(1u32..4, 1..5),
            picks in proptest::collection::vec((0usize..5, 0u8..6), 0..40),
            global in 0u32..8,
        ) {
            let ids: Vec<AgentId> = caps.iter().map(|_| agent()).collect();
            let agents: HashMap<AgentId, AgentGate> =
                ids.iter().zip(&caps).map(|(id, c)| (*id, gate(*c))).collect();
            let q: Vec<Candidate> = picks
                .iter()
                .map(|(a, i)| cand(ids[a % ids.len()], (*i > 0).then(|| IssueKey::parse(&format!("MESA-{i}")).unwrap())))
                .collect();
            let p = plan(&q, &agents, &Load::default(), global, false, NOW);
            proptest::prop_assert!(p.start.len() as u32 <= global);
            proptest::prop_assert_eq!(p.start.len() + p.held.len(), q.len());
            let mut seen_pairs = HashSet::new();
            let mut per_agent: HashMap<AgentId, u32> = HashMap::new();
            for id in &p.start {
                let c = q.iter().find(|c| c.run_id == *id).unwrap();
                proptest::prop_assert!(seen_pairs.insert((c.agent_id, c.issue_key.clone())));
                let n = per_agent.entry(c.agent_id).or_default();
                *n += 1;
                proptest::prop_assert!(*n <= agents[&c.agent_id].max_concurrent_runs);
            }
        }
    }
}
