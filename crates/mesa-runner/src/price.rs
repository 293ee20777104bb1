//! Per-model token prices, for runners that report tokens without a cost (SPEC §7.4).
//!
//! Prices are US dollars per million tokens, kept internally as integer micro-dollars per million
//! tokens so an estimate is exact integer arithmetic. A model name matches the entry with the
//! longest prefix of it (`claude-sonnet-4-5-20250929` matches `claude-sonnet-4`). Provider
//! prefixes (`anthropic/`, `openai/`, `models/`, Bedrock's `us.anthropic.`) are ignored, and
//! case does not matter. Models marked `local`, and unknown names with a `:` tag (Ollama's
//! `llama3:8b`), cost nothing.
//!
//! Settings override the built-in table with the same shape:
//!
//! ```toml
//! [prices.models."gpt-5"]
//! input = 1.25
//! output = 10.0
//! cache_read = 0.125
//!
//! [prices.models."qwen3-coder"]
//! local = true
//! ```

use std::collections::BTreeMap;

use mesa_domain::MicroUsd;
use mesa_domain::entity::TokenUsage;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One million, the token unit prices are quoted in.
const PER: i128 = 1_000_000;

/// A price in micro-dollars per million tokens, written as dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub i64);

impl Rate {
    /// From dollars per million tokens, rounded to the micro-dollar; negative and non-finite
    /// values become zero.
    pub fn from_usd(usd: f64) -> Rate {
        if !usd.is_finite() || usd <= 0.0 {
            return Rate(0);
        }
        // Prices above a million dollars per million tokens are not prices.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "clamped to 1e12 just before"
        )]
        Rate((usd.min(1e6) * 1e6).round() as i64)
    }

    /// Dollars per million tokens.
    #[expect(clippy::cast_precision_loss, reason = "display and serialization only")]
    pub fn as_usd(self) -> f64 {
        self.0 as f64 / 1e6
    }

    fn times(self, tokens: i64) -> i128 {
        i128::from(self.0) * i128::from(tokens.max(0))
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_usd())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(d)?;
        if !usd.is_finite() || usd < 0.0 {
            return Err(serde::de::Error::custom(
                "a price must be a non-negative number of dollars per million tokens",
            ));
        }
        Ok(Rate::from_usd(usd))
    }
}

/// The prices of one model (or model family), per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Uncached input tokens.
    #[serde(default)]
    pub input: Rate,
    /// Output tokens (reasoning included).
    #[serde(default)]
    pub output: Rate,
    /// Input tokens read from the prompt cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<Rate>,
    /// Input tokens written to the prompt cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Rate>,
    /// A model that runs locally: it costs nothing whatever the rates say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
}

impl ModelPrice {
    /// A price from dollars per million tokens: input, output, cache read, cache write.
    pub fn usd(input: f64, output: f64, cache_read: f64, cache_write: f64) -> ModelPrice {
        ModelPrice {
            input: Rate::from_usd(input),
            output: Rate::from_usd(output),
            cache_read: Some(Rate::from_usd(cache_read)),
            cache_write: Some(Rate::from_usd(cache_write)),
            local: false,
        }
    }

    /// A local model: free.
    pub fn local() -> ModelPrice {
        ModelPrice {
            local: true,
            ..ModelPrice::default()
        }
    }

    /// The cost of `usage` at these prices, rounded to the nearest micro-dollar.
    pub fn cost(&self, usage: &TokenUsage) -> MicroUsd {
        if self.local {
            return MicroUsd::ZERO;
        }
        let micro_per_mtok = self.input.times(usage.input_tokens)
            + self.output.times(usage.output_tokens)
            + self
                .cache_read
                .unwrap_or(self.input)
                .times(usage.cache_read_tokens)
            + self
                .cache_write
                .unwrap_or(self.input)
                .times(usage.cache_write_tokens);
        let rounded = (micro_per_mtok + PER / 2) / PER;
        MicroUsd(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

/// Per-model prices matched by longest model-name prefix. [`Default`] is the built-in table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Prices by model-name prefix (lowercase).
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable::builtin()
    }
}

/// Built-in prices, dollars per million tokens: (prefix, input, output, cache read, cache write).
/// OpenAI and Google do not bill cache writes separately: their cache-write price is the input
/// price.
const BUILTIN: &[(&str, f64, f64, f64, f64)] = &[
    // Anthropic. Opus 4.5 and later are cheaper than Opus 4.0 and 4.1.
    ("claude-opus-4", 5.0, 25.0, 0.5, 6.25),
    ("claude-opus-4-0", 15.0, 75.0, 1.5, 18.75),
    ("claude-opus-4-2025", 15.0, 75.0, 1.5, 18.75),
    ("claude-opus-4-1", 15.0, 75.0, 1.5, 18.75),
    ("claude-3-opus", 15.0, 75.0, 1.5, 18.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.3, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.3, 3.75),
    ("claude-3-5-sonnet", 3.0, 15.0, 0.3, 3.75),
    ("claude-haiku-4", 1.0, 5.0, 0.1, 1.25),
    ("claude-3-5-haiku", 0.8, 4.0, 0.08, 1.0),
    ("claude-3-haiku", 0.25, 1.25, 0.03, 0.3),
    // Claude Code's model aliases.
    ("opus", 5.0, 25.0, 0.5, 6.25),
    ("sonnet", 3.0, 15.0, 0.3, 3.75),
    ("haiku", 1.0, 5.0, 0.1, 1.25),
    // OpenAI.
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", 0.05, 0.4, 0.005, 0.05),
    ("gpt-5-pro", 15.0, 120.0, 15.0, 15.0),
    ("gpt-4.1", 2.0, 8.0, 0.5, 2.0),
    ("gpt-4.1-mini", 0.4, 1.6, 0.1, 0.4),
    ("gpt-4.1-nano", 0.1, 0.4, 0.025, 0.1),
    ("gpt-4o", 2.5, 10.0, 1.25, 2.5),
    ("gpt-4o-mini", 0.15, 0.6, 0.075, 0.15),
    ("o3", 2.0, 8.0, 0.5, 2.0),
    ("o3-mini", 1.1, 4.4, 0.55, 1.1),
    ("o3-pro", 20.0, 80.0, 20.0, 20.0),
    ("o4-mini", 1.1, 4.4, 0.275, 1.1),
    // Google (prompts up to 200k tokens).
    ("gemini-2.5-pro", 1.25, 10.0, 0.125, 1.25),
    ("gemini-2.5-flash", 0.3, 2.5, 0.03, 0.3),
    ("gemini-2.5-flash-lite", 0.1, 0.4, 0.01, 0.1),
    ("gemini-3-pro", 2.0, 12.0, 0.2, 2.0),
];

impl PriceTable {
    /// The built-in prices of current Anthropic, OpenAI and Google models.
    pub fn builtin() -> PriceTable {
        let models = BUILTIN
            .iter()
            .map(|&(prefix, input, output, read, write)| {
                (
                    prefix.to_owned(),
                    ModelPrice::usd(input, output, read, write),
                )
            })
            .collect();
        PriceTable { models }
    }

    /// An empty table: every model is unknown except local ones.
    pub fn empty() -> PriceTable {
        PriceTable {
            models: BTreeMap::new(),
        }
    }

    /// This table with `overrides` added, replacing entries with the same prefix.
    #[must_use]
    pub fn merged(mut self, overrides: PriceTable) -> PriceTable {
        for (prefix, price) in overrides.models {
            self.models.insert(prefix.to_lowercase(), price);
        }
        self
    }

    /// The price that applies to `model`, if any: the entry with the longest prefix of the
    /// normalized name, else a free local price for a `name:tag` model.
    pub fn lookup(&self, model: &str) -> Option<ModelPrice> {
        let name = normalize(model);
        if name.is_empty() {
            return None;
        }
        let best = self
            .models
            .iter()
            .filter(|(prefix, _)| name.starts_with(&prefix.to_lowercase()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| *price);
        best.or_else(|| name.contains(':').then(ModelPrice::local))
    }

    /// The estimated cost of `usage` on `model`; `None` when the model is unknown.
    pub fn estimate(&self, model: &str, usage: &TokenUsage) -> Option<MicroUsd> {
        self.lookup(model).map(|price| price.cost(usage))
    }
}

/// Lowercase, without a provider path (`anthropic/`, `models/`) or a Bedrock region and
/// vendor (`us.anthropic.`).
fn normalize(model: &str) -> String {
    let lower = model.trim().to_lowercase();
    let base = lower.rsplit('/').next().unwrap_or_default();
    let base = match base.find("anthropic.") {
        Some(at) => &base[at + "anthropic.".len()..],
        None => base,
    };
    base.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: i64, output: i64, read: i64, write: i64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: read,
            cache_write_tokens: write,
        }
    }

    #[test]
    fn sonnet_matches_what_claude_code_charges() {
        // docs/testing-agents.md: 3000 in + 80 out + 500 cache write + 1000 cache read on
        // claude-sonnet-4-5 cost exactly $0.012375.
        let t = PriceTable::default();
        assert_eq!(
            t.estimate("claude-sonnet-4-5", &usage(3000, 80, 1000, 500)),
            Some(MicroUsd(12_375))
        );
        assert_eq!(
            t.estimate("claude-haiku-4-5-20251001", &usage(200, 40, 0, 0)),
            Some(MicroUsd(400))
        );
        assert_eq!(
            t.estimate("claude-opus-4-8[1m]", &usage(100, 20, 0, 0)),
            Some(MicroUsd(1_000))
        );
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::default();
        let m = usage(1_000_000, 0, 0, 0);
        assert_eq!(
            t.estimate("claude-opus-4-1-20250805", &m),
            Some(MicroUsd(15_000_000))
        );
        assert_eq!(
            t.estimate("claude-opus-4-20250514", &m),
            Some(MicroUsd(15_000_000))
        );
        assert_eq!(
            t.estimate("claude-opus-4-5-20251101", &m),
            Some(MicroUsd(5_000_000))
        );
        assert_eq!(
            t.estimate("gpt-5-mini-2025-08-07", &m),
            Some(MicroUsd(250_000))
        );
        assert_eq!(t.estimate("gpt-5-codex", &m), Some(MicroUsd(1_250_000)));
        assert_eq!(t.estimate("o3-mini", &m), Some(MicroUsd(1_100_000)));
        assert_eq!(t.estimate("o3-2025-04-16", &m), Some(MicroUsd(2_000_000)));
        assert_eq!(
            t.estimate("gemini-2.5-flash-lite", &m),
            Some(MicroUsd(100_000))
        );
        assert_eq!(t.estimate("gemini-2.5-flash", &m), Some(MicroUsd(300_000)));
    }

    #[test]
    fn provider_prefixes_and_case_are_ignored() {
        let t = PriceTable::default();
        let m = usage(0, 1_000_000, 0, 0);
        for (name, expected) in [
            ("anthropic/claude-sonnet-4-5", 15_000_000),
            ("us.anthropic.claude-sonnet-4-20250514-v1:0", 15_000_000),
            ("Claude-Sonnet-4-5", 15_000_000),
            ("models/gemini-2.5-pro", 10_000_000),
            ("openai/gpt-4.1", 8_000_000),
        ] {
            assert_eq!(t.estimate(name, &m), Some(MicroUsd(expected)), "{name}");
        }
    }

    #[test]
    fn cache_tokens_use_their_own_rates() {
        let t = PriceTable::default();
        // gpt-4o: cached input at $1.25 / MTok.
        assert_eq!(
            t.estimate("gpt-4o-2024-08-06", &usage(0, 0, 2_000_000, 0)),
            Some(MicroUsd(2_500_000))
        );
        // Without cache rates, cache tokens cost the input price.
        let custom = PriceTable::empty().merged(PriceTable {
            models: BTreeMap::from([(
                "my-model".to_owned(),
                ModelPrice {
                    input: Rate::from_usd(2.0),
                    output: Rate::from_usd(4.0),
                    ..ModelPrice::default()
                },
            )]),
        });
        assert_eq!(
            custom.estimate("my-model-v2", &usage(1, 1, 1, 1)),
            Some(MicroUsd(10)),
            "one token of each kind at $2, $4, $2 and $2 per million tokens"
        );
        assert_eq!(
            custom.estimate("my-model-v2", &usage(100_000, 100_000, 100_000, 100_000)),
            Some(MicroUsd(1_000_000))
        );
    }

    #[test]
    fn rounding_is_to_the_nearest_micro_dollar() {
        let p = ModelPrice::usd(3.0, 15.0, 0.3, 3.75);
        // 1 input token at $3 / MTok is 3 micro-dollars; 1 cache read is 0.3: rounds down.
        assert_eq!(p.cost(&usage(1, 0, 0, 0)), MicroUsd(3));
        assert_eq!(p.cost(&usage(0, 0, 1, 0)), MicroUsd(0));
        // 2 cache reads: 0.6 rounds up.
        assert_eq!(p.cost(&usage(0, 0, 2, 0)), MicroUsd(1));
        // 5 cache reads: exactly 1.5 rounds half up.
        assert_eq!(p.cost(&usage(0, 0, 5, 0)), MicroUsd(2));
        // Negative counts (corrupt output) count as zero.
        assert_eq!(p.cost(&usage(-5, 0, 0, 0)), MicroUsd(0));
    }

    #[test]
    fn unknown_models_have_no_estimate_and_local_ones_are_free() {
        let t = PriceTable::default();
        let u = usage(10_000, 10_000, 0, 0);
        assert_eq!(t.estimate("mystery-model", &u), None);
        assert_eq!(t.estimate("", &u), None);
        assert_eq!(t.estimate("llama3:8b", &u), Some(MicroUsd::ZERO));
        assert_eq!(
            t.estimate("ollama/qwen2.5-coder:32b", &u),
            Some(MicroUsd::ZERO)
        );
        let marked = t.merged(PriceTable {
            models: BTreeMap::from([("Qwen3-Coder".to_owned(), ModelPrice::local())]),
        });
        assert_eq!(marked.estimate("qwen3-coder-30b", &u), Some(MicroUsd::ZERO));
    }

    #[test]
    fn settings_override_the_builtin_table() {
        let overrides: PriceTable = serde_json::from_value(serde_json::json!({
            "models": {
                "gpt-5": {"input": 2.0, "output": 20.0, "cache_read": 0.2},
                "llama-hosted": {"input": 0.5, "output": 0.5}
            }
        }))
        .expect("valid price settings");
        let t = PriceTable::default().merged(overrides);
        assert_eq!(
            t.estimate("gpt-5", &usage(1_000_000, 1_000_000, 1_000_000, 0)),
            Some(MicroUsd(22_200_000))
        );
        assert_eq!(
            t.estimate("llama-hosted-70b", &usage(2_000_000, 0, 0, 0)),
            Some(MicroUsd(1_000_000))
        );
        // The rest of the built-in table is untouched.
        assert_eq!(
            t.estimate("gpt-4o", &usage(1_000_000, 0, 0, 0)),
            Some(MicroUsd(2_500_000))
        );
    }

    #[test]
    fn bad_price_settings_are_rejected() {
        for bad in [
            serde_json::json!({"models": {"x": {"input": -1.0}}}),
            serde_json::json!({"models": {"x": {"inptu": 1.0}}}),
            serde_json::json!({"modles": {}}),
        ] {
            assert!(
                serde_json::from_value::<PriceTable>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_table_round_trips_through_serde() {
        let t = PriceTable::default();
        let json = serde_json::to_value(&t).expect("serializable");
        let back: PriceTable = serde_json::from_value(json).expect("deserializable");
        assert_eq!(back, t);
    }
}
