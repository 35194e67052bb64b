//! Prometheus metrics at `/metrics` (text format 0.0.4): runs by function and status
//! and the queue depth (read from the store at scrape time), step latency histograms,
//! step retries and LLM calls and tokens (counted by this process).

use std::collections::HashMap;
use std::fmt::Write as _;

use parking_lot::Mutex;

/// Upper bounds of the step latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

#[derive(Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters kept by this process.
#[derive(Default)]
pub struct Metrics {
    steps: Mutex<HashMap<String, Histogram>>,
    retries: Mutex<HashMap<String, u64>>,
    http: Mutex<HashMap<u16, u64>>,
    uploads: Mutex<u64>,
}

/// Store figures read at scrape time.
pub struct StoreFigures {
    /// (function, status, count).
    pub runs: Vec<(String, String, u64)>,
    /// Runs queued and not yet started.
    pub queue_depth: u64,
    /// Runs this node executes now.
    pub active: usize,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// A step attempt of `function` took `seconds`.
    pub fn observe_step(&self, function: &str, seconds: f64) {
        let mut map = self.steps.lock();
        let h = map.entry(function.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// A step attempt of `function` failed and will be retried.
    pub fn retry(&self, function: &str) {
        *self.retries.lock().entry(function.to_string()).or_default() += 1;
    }

    /// An API answer with this status.
    pub fn http(&self, status: u16) {
        *self.http.lock().entry(status).or_default() += 1;
    }

    /// An upload was accepted.
    pub fn upload(&self) {
        *self.uploads.lock() += 1;
    }

    /// The exposition text.
    pub fn render(
        &self,
        store: &StoreFigures,
        usage: &[(String, learnflow_pipeline::services::UsageTotals)],
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP learnflow_runs Runs in the store by function and status."
        );
        let _ = writeln!(out, "# TYPE learnflow_runs gauge");
        for (f, s, n) in &store.runs {
            let _ = writeln!(
                out,
                "learnflow_runs{{function=\"{}\",status=\"{}\"}} {n}",
                escape(f),
                s
            );
        }
        let _ = writeln!(
            out,
            "# HELP learnflow_queue_depth Runs queued and not started yet."
        );
        let _ = writeln!(out, "# TYPE learnflow_queue_depth gauge");
        let _ = writeln!(out, "learnflow_queue_depth {}", store.queue_depth);
        let _ = writeln!(out, "# HELP learnflow_active_runs Runs this node is executing.");
        let _ = writeln!(out, "# TYPE learnflow_active_runs gauge");
        let _ = writeln!(out, "learnflow_active_runs {}", store.active);
        let _ = writeln!(
            out,
            "# HELP learnflow_step_duration_seconds Step attempt latency."
        );
        let _ = writeln!(out, "# TYPE learnflow_step_duration_seconds histogram");
        let mut steps: Vec<_> = self
            .steps
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        steps.sort_by(|a, b| a.0.cmp(&b.0));
        for (f, h) in steps {
            let f = escape(&f);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "learnflow_step_duration_seconds_bucket{{function=\"{f}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "learnflow_step_duration_seconds_bucket{{function=\"{f}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "learnflow_step_duration_seconds_sum{{function=\"{f}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "learnflow_step_duration_seconds_count{{function=\"{f}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP learnflow_step_retries_total Step attempts that failed and were retried."
        );
        let _ = writeln!(out, "# TYPE learnflow_step_retries_total counter");
        let mut retries: Vec<_> = self.retries.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
        retries.sort();
        for (f, n) in retries {
            let _ = writeln!(
                out,
                "learnflow_step_retries_total{{function=\"{}\"}} {n}",
                escape(&f)
            );
        }
        let _ = writeln!(out, "# HELP learnflow_llm_calls_total Language-model calls.");
        let _ = writeln!(out, "# TYPE learnflow_llm_calls_total counter");
        for (p, t) in usage {
            let _ = writeln!(
                out,
                "learnflow_llm_calls_total{{provider=\"{}\"}} {}",
                escape(p),
                t.calls
            );
        }
        let _ = writeln!(out, "# HELP learnflow_llm_tokens_total Language-model tokens.");
        let _ = writeln!(out, "# TYPE learnflow_llm_tokens_total counter");
        for (p, t) in usage {
            let p = escape(p);
            let _ = writeln!(
                out,
                "learnflow_llm_tokens_total{{provider=\"{p}\",direction=\"input\"}} {}",
                t.input_tokens
            );
            let _ = writeln!(
                out,
                "learnflow_llm_tokens_total{{provider=\"{p}\",direction=\"output\"}} {}",
                t.output_tokens
            );
        }
        let _ = writeln!(
            out,
            "# HELP learnflow_llm_cost_usd_total Language-model cost where prices are configured."
        );
        let _ = writeln!(out, "# TYPE learnflow_llm_cost_usd_total counter");
        for (p, t) in usage {
            let _ = writeln!(
                out,
                "learnflow_llm_cost_usd_total{{provider=\"{}\"}} {}",
                escape(p),
                t.cost_usd
            );
        }
        let _ = writeln!(out, "# HELP learnflow_uploads_total Uploads accepted.");
        let _ = writeln!(out, "# TYPE learnflow_uploads_total counter");
        let _ = writeln!(out, "learnflow_uploads_total {}", *self.uploads.lock());
        let _ = writeln!(
            out,
            "# HELP learnflow_http_responses_total API answers by status."
        );
        let _ = writeln!(out, "# TYPE learnflow_http_responses_total counter");
        let mut http: Vec<_> = self.http.lock().iter().map(|(k, v)| (*k, *v)).collect();
        http.sort();
        for (s, n) in http {
            let _ = writeln!(out, "learnflow_http_responses_total{{status=\"{s}\"}} {n}");
        }
        out
    }
}
