//! How a run ended, from the process exit and the parsed output (SPEC §7.4, §6.5).

use mesa_domain::{CostSource, MicroUsd, RunStatus};

use crate::parse::Parsed;
use crate::price::PriceTable;
use crate::{ProcessExit, RunOutcome};

/// The failure reason of a run that hit a provider quota or rate limit.
pub const QUOTA_REASON: &str = "quota";

/// The outcome of a finished process:
///
/// - cancelled → `cancelled`; deadline passed → `timed_out`;
/// - exit 0 and no error in the output → `succeeded`;
/// - an error in the output or a non-zero exit (or a signal) → `failed`, with reason `quota`
///   and `quota` set when a quota or rate limit was recognized, else the output's error message,
///   the runner's outcome name (e.g. `error_max_turns`), the last stderr line or the exit code;
/// - cost: the runner's own figure (`parsed`), else the price table's estimate for the model
///   that answered (or `model`, the configured one) (`estimated`), else zero.
pub fn decide(exit: &ProcessExit, parsed: Parsed, model: &str, prices: &PriceTable) -> RunOutcome {
    let (cost_usd, cost_source) = cost(&parsed, model, prices);
    let failed = parsed.is_error || exit.exit_code != Some(0);
    let (status, failure_reason, quota) = if exit.cancelled {
        (RunStatus::Cancelled, Some("cancelled".to_owned()), None)
    } else if exit.timed_out {
        (RunStatus::TimedOut, Some("timed_out".to_owned()), None)
    } else if !failed {
        (RunStatus::Succeeded, None, None)
    } else if let Some(hit) = parsed.quota {
        (RunStatus::Failed, Some(QUOTA_REASON.to_owned()), Some(hit))
    } else {
        (RunStatus::Failed, Some(failure_reason(exit, &parsed)), None)
    };
    RunOutcome {
        status,
        exit_code: exit.exit_code.map(i64::from),
        failure_reason,
        usage: parsed.usage,
        cost_usd,
        cost_source,
        num_turns: parsed.num_turns,
        quota,
        result_text: parsed.result_text,
    }
}

fn cost(parsed: &Parsed, model: &str, prices: &PriceTable) -> (MicroUsd, CostSource) {
    if let Some(cost) = parsed.cost_usd {
        return (cost, CostSource::Parsed);
    }
    if parsed.usage.is_zero() {
        return (MicroUsd::ZERO, CostSource::Estimated);
    }
    let estimate = parsed
        .model
        .as_deref()
        .and_then(|m| prices.estimate(m, &parsed.usage))
        .or_else(|| prices.estimate(model, &parsed.usage));
    (estimate.unwrap_or(MicroUsd::ZERO), CostSource::Estimated)
}

fn failure_reason(exit: &ProcessExit, parsed: &Parsed) -> String {
    let named = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let subtype = named(&parsed.subtype).filter(|s| s != "success");
    named(&parsed.error_message)
        .or(subtype)
        .or_else(|| named(&exit.last_stderr_line))
        .unwrap_or_else(|| match (exit.exit_code, exit.signal) {
            (Some(code), _) if code != 0 => format!("exit code {code}"),
            (_, Some(signal)) => format!("killed by signal {signal}"),
            _ => "the output reported an error".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use mesa_domain::Timestamp;
    use mesa_domain::entity::TokenUsage;

    use super::*;
    use crate::QuotaHit;

    fn exit(code: i32) -> ProcessExit {
        ProcessExit {
            exit_code: Some(code),
            ..ProcessExit::default()
        }
    }

    fn usage(input: i64, output: i64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            ..TokenUsage::default()
        }
    }

    fn decide_default(exit: &ProcessExit, parsed: Parsed) -> RunOutcome {
        decide(exit, parsed, "claude-sonnet-4-5", &PriceTable::default())
    }

    #[test]
    fn exit_zero_without_an_error_succeeds_with_the_runners_cost() {
        let parsed = Parsed {
            usage: usage(1000, 100),
            cost_usd: Some(MicroUsd(4_500)),
            num_turns: Some(3),
            result_text: Some("done".to_owned()),
            subtype: Some("success".to_owned()),
            ..Parsed::default()
        };
        let o = decide_default(&exit(0), parsed);
        assert_eq!(
            o,
            RunOutcome {
                status: RunStatus::Succeeded,
                exit_code: Some(0),
                failure_reason: None,
                usage: usage(1000, 100),
                cost_usd: MicroUsd(4_500),
                cost_source: CostSource::Parsed,
                num_turns: Some(3),
                quota: None,
                result_text: Some("done".to_owned()),
            }
        );
    }

    #[test]
    fn an_error_result_fails_even_with_exit_zero() {
        let parsed = Parsed {
            is_error: true,
            subtype: Some("error_max_turns".to_owned()),
            ..Parsed::default()
        };
        let o = decide_default(&exit(0), parsed);
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.failure_reason.as_deref(), Some("error_max_turns"));
    }

    #[test]
    fn the_error_message_is_preferred_to_a_success_subtype() {
        let parsed = Parsed {
            is_error: true,
            subtype: Some("success".to_owned()),
            error_message: Some("API Error: 500 internal error".to_owned()),
            ..Parsed::default()
        };
        let o = decide_default(&exit(1), parsed);
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.exit_code, Some(1));
        assert_eq!(
            o.failure_reason.as_deref(),
            Some("API Error: 500 internal error")
        );
    }

    #[test]
    fn a_non_zero_exit_fails_with_the_last_stderr_line_or_the_code() {
        let mut e = exit(2);
        e.last_stderr_line = Some("error: unknown flag --bogus".to_owned());
        let o = decide_default(&e, Parsed::default());
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(
            o.failure_reason.as_deref(),
            Some("error: unknown flag --bogus")
        );

        let o = decide_default(&exit(3), Parsed::default());
        assert_eq!(o.failure_reason.as_deref(), Some("exit code 3"));

        let killed = ProcessExit {
            signal: Some(9),
            ..ProcessExit::default()
        };
        let o = decide_default(&killed, Parsed::default());
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.exit_code, None);
        assert_eq!(o.failure_reason.as_deref(), Some("killed by signal 9"));
    }

    #[test]
    fn timeout_and_cancel_win_over_the_exit() {
        let timed_out = ProcessExit {
            signal: Some(15),
            timed_out: true,
            ..ProcessExit::default()
        };
        let o = decide_default(&timed_out, Parsed::default());
        assert_eq!(o.status, RunStatus::TimedOut);
        assert_eq!(o.failure_reason.as_deref(), Some("timed_out"));

        let cancelled = ProcessExit {
            exit_code: Some(0),
            cancelled: true,
            timed_out: true,
            ..ProcessExit::default()
        };
        let o = decide_default(&cancelled, Parsed::default());
        assert_eq!(o.status, RunStatus::Cancelled);
        assert_eq!(o.failure_reason.as_deref(), Some("cancelled"));
    }

    #[test]
    fn a_quota_failure_says_quota() {
        let hit = QuotaHit {
            retry_at: Some(Timestamp::from_millis(1_795_608_000_000)),
        };
        let parsed = Parsed {
            is_error: true,
            error_message: Some("Claude AI usage limit reached|1795608000".to_owned()),
            quota: Some(hit),
            ..Parsed::default()
        };
        let o = decide_default(&exit(1), parsed);
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.failure_reason.as_deref(), Some(QUOTA_REASON));
        assert_eq!(o.quota, Some(hit));
    }

    #[test]
    fn a_quota_message_in_a_successful_run_is_not_a_failure() {
        // e.g. a retried 529 that the CLI recovered from.
        let parsed = Parsed {
            quota: Some(QuotaHit { retry_at: None }),
            ..Parsed::default()
        };
        let o = decide_default(&exit(0), parsed);
        assert_eq!(o.status, RunStatus::Succeeded);
        assert_eq!(o.quota, None);
    }

    #[test]
    fn tokens_without_cost_are_estimated_from_the_answering_model() {
        // gpt-5: $1.25 in / $10 out per MTok.
        let parsed = Parsed {
            usage: usage(100_000, 10_000),
            model: Some("gpt-5".to_owned()),
            ..Parsed::default()
        };
        let o = decide(&exit(0), parsed, "", &PriceTable::default());
        assert_eq!(
            (o.cost_usd, o.cost_source),
            (MicroUsd(225_000), CostSource::Estimated)
        );

        // Without a reported model, the configured one prices it.
        let parsed = Parsed {
            usage: usage(100_000, 10_000),
            ..Parsed::default()
        };
        let o = decide(&exit(0), parsed, "claude-haiku-4-5", &PriceTable::default());
        assert_eq!(
            (o.cost_usd, o.cost_source),
            (MicroUsd(150_000), CostSource::Estimated)
        );
    }

    #[test]
    fn unknown_models_and_no_usage_cost_zero() {
        let parsed = Parsed {
            usage: usage(5_000, 5_000),
            ..Parsed::default()
        };
        let o = decide(
            &exit(0),
            parsed,
            "some-unknown-model",
            &PriceTable::default(),
        );
        assert_eq!(
            (o.cost_usd, o.cost_source),
            (MicroUsd::ZERO, CostSource::Estimated)
        );

        let o = decide_default(&exit(0), Parsed::default());
        assert_eq!(
            (o.cost_usd, o.cost_source),
            (MicroUsd::ZERO, CostSource::Estimated)
        );

        // A reported zero is the runner's own figure.
        let parsed = Parsed {
            usage: usage(5_000, 5_000),
            cost_usd: Some(MicroUsd::ZERO),
            ..Parsed::default()
        };
        let o = decide_default(&exit(0), parsed);
        assert_eq!(
            (o.cost_usd, o.cost_source),
            (MicroUsd::ZERO, CostSource::Parsed)
        );
    }
}
