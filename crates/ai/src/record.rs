//! Records of model and tool calls, kept in the run's journal like `step.ai.infer`:
//! provider, model, prompt (or its hash when large), output, tokens, latency, cost.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::provider::Usage;

/// Prompts longer than this are stored as a prefix plus their hash.
pub const MAX_RECORDED_PROMPT: usize = 4_000;
/// Outputs longer than this are cut in the record.
pub const MAX_RECORDED_OUTPUT: usize = 8_000;

/// What kind of call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    /// A model call.
    Llm,
    /// A tool the model called.
    Tool,
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Model or tool call.
    pub kind: CallKind,
    /// What it was for (`agent:quiz`, `architect`, `ask`).
    pub task: String,
    /// Provider name, or the tool's name for tool calls.
    pub provider: String,
    /// Model (empty for tools).
    pub model: String,
    /// The prompt (the last user message, or the tool arguments), cut to
    /// [`MAX_RECORDED_PROMPT`] characters.
    pub prompt: String,
    /// Whether `prompt` was cut.
    pub prompt_truncated: bool,
    /// SHA-256 of the whole prompt.
    pub prompt_sha256: String,
    /// Characters in the whole prompt.
    pub prompt_chars: usize,
    /// The answer (or tool result), cut to [`MAX_RECORDED_OUTPUT`] characters.
    pub output: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Wall time in milliseconds.
    pub latency_ms: u64,
    /// Cost in US dollars, when a price table is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The error, for failed calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn cut(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        (s.to_string(), false)
    } else {
        (s.chars().take(max).collect(), true)
    }
}

impl CallRecord {
    /// A record of a call with its prompt and answer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: CallKind,
        task: &str,
        provider: &str,
        model: &str,
        prompt: &str,
        output: &str,
        usage: Usage,
        latency_ms: u64,
    ) -> Self {
        let (p, truncated) = cut(prompt, MAX_RECORDED_PROMPT);
        CallRecord {
            kind,
            task: task.to_string(),
            provider: provider.to_string(),
            model: model.to_string(),
            prompt: p,
            prompt_truncated: truncated,
            prompt_sha256: hex::encode(Sha256::digest(prompt.as_bytes())),
            prompt_chars: prompt.chars().count(),
            output: cut(output, MAX_RECORDED_OUTPUT).0,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            latency_ms,
            cost_usd: None,
            error: None,
        }
    }
}

/// Totals over several calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallTotals {
    /// Model calls.
    pub llm_calls: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Cost in US dollars (calls without a price count as zero).
    pub cost_usd: f64,
}

impl CallTotals {
    /// Sums records.
    pub fn of(records: &[CallRecord]) -> Self {
        let mut t = CallTotals::default();
        for r in records {
            match r.kind {
                CallKind::Llm => t.llm_calls += 1,
                CallKind::Tool => t.tool_calls += 1,
            }
            t.input_tokens += r.input_tokens;
            t.output_tokens += r.output_tokens;
            t.cost_usd += r.cost_usd.unwrap_or(0.0);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_prompts_are_cut_and_hashed() {
        let prompt = "x".repeat(MAX_RECORDED_PROMPT + 10);
        let r = CallRecord::new(
            CallKind::Llm,
            "agent:quiz",
            "openai",
            "m",
            &prompt,
            "{}",
            Usage::default(),
            5,
        );
        assert!(r.prompt_truncated);
        assert_eq!(r.prompt.chars().count(), MAX_RECORDED_PROMPT);
        assert_eq!(r.prompt_chars, MAX_RECORDED_PROMPT + 10);
        assert_eq!(r.prompt_sha256.len(), 64);
        let short = CallRecord::new(CallKind::Llm, "t", "p", "m", "hi", "ok", Usage::default(), 1);
        assert!(!short.prompt_truncated);
        assert_eq!(short.prompt, "hi");
    }
}
