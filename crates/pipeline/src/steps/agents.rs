//! `architect` and `agent-<name>`: the plan, then one study material per planned agent.

use std::sync::Arc;

use learnflow_ai::agents::{Plan, PlannedAgent, Purpose};
use learnflow_ai::provider::ChatProvider;
use learnflow_ai::record::CallRecord;
use learnflow_ai::studio;
use learnflow_engine::Failure;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{task_failure, Uploaded};
use crate::library::{DocumentStatus, MaterialRecord};
use crate::services::Services;

/// The architect step's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanOutput {
    /// The plan.
    pub plan: Plan,
    /// The provider that made it.
    pub provider: String,
    /// Model and tool calls.
    pub calls: Vec<CallRecord>,
}

/// An agent step's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaterialOutput {
    /// The agent.
    pub agent: String,
    /// The provider that made it.
    pub provider: String,
    /// The material (schema-valid).
    pub material: Value,
    /// Model and tool calls.
    pub calls: Vec<CallRecord>,
}

fn retriable(e: impl std::fmt::Display) -> Failure {
    Failure::retriable(e.to_string())
}

pub async fn architect(
    s: &Services,
    data: &Uploaded,
    provider: Arc<dyn ChatProvider>,
) -> Result<PlanOutput, Failure> {
    let ctx = s.context(&data.document_id).await.map_err(retriable)?;
    let purpose = Purpose::parse(&data.purpose);
    let (plan, calls) = studio::plan(provider.as_ref(), &ctx, &purpose)
        .await
        .map_err(|e| task_failure("architect", &e))?;
    s.usage.add(&calls);
    if data.review {
        s.library
            .set_status(&data.document_id, DocumentStatus::Review, None, None)
            .await
            .map_err(retriable)?;
    }
    Ok(PlanOutput {
        plan,
        provider: provider.name().to_string(),
        calls,
    })
}

pub async fn material(
    s: &Services,
    data: &Uploaded,
    provider: Arc<dyn ChatProvider>,
    planned: PlannedAgent,
) -> Result<MaterialOutput, Failure> {
    if data.review {
        s.library
            .set_status(&data.document_id, DocumentStatus::Processing, None, None)
            .await
            .map_err(retriable)?;
    }
    let ctx = s.context(&data.document_id).await.map_err(retriable)?;
    let purpose = Purpose::parse(&data.purpose);
    let focus = Some(planned.focus.as_str()).filter(|f| !f.trim().is_empty());
    let what = format!("agent {}", planned.name.as_str());
    let outcome = studio::material(provider.as_ref(), &ctx, planned.name, &purpose, focus)
        .await
        .map_err(|e| task_failure(&what, &e))?;
    s.usage.add(&outcome.calls);
    // Readers see each material as soon as it is ready; `store` writes the final set.
    s.library
        .put_materials(
            &data.document_id,
            &[MaterialRecord {
                agent: planned.name.as_str().to_string(),
                status: "ready".into(),
                content: Some(outcome.output.clone()),
                error: None,
                priority: u32::from(planned.priority),
                focus: planned.focus.clone(),
            }],
        )
        .await
        .map_err(retriable)?;
    Ok(MaterialOutput {
        agent: planned.name.as_str().to_string(),
        provider: provider.name().to_string(),
        material: outcome.output,
        calls: outcome.calls,
    })
}
