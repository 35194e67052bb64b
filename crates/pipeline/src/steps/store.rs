//! `store`: the materials (ready or failed, with the reason) go to the library and the
//! document becomes ready.

use learnflow_ai::agents::PlannedAgent;
use learnflow_engine::Failure;
use serde::{Deserialize, Serialize};

use super::agents::MaterialOutput;
use super::Uploaded;
use crate::library::{DocumentStatus, MaterialRecord};
use crate::services::Services;

/// The store step's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    /// Materials ready.
    pub ready: usize,
    /// Materials that failed.
    pub failed: usize,
    /// Which agents failed.
    pub failed_agents: Vec<String>,
}

pub async fn store(
    s: &Services,
    data: &Uploaded,
    outcomes: &[(PlannedAgent, Result<MaterialOutput, Failure>)],
) -> Result<Stored, Failure> {
    let mut records = Vec::with_capacity(outcomes.len());
    let mut failed_agents = Vec::new();
    for (planned, outcome) in outcomes {
        let (status, content, error) = match outcome {
            Ok(m) => ("ready", Some(m.material.clone()), None),
            Err(f) => {
                failed_agents.push(planned.name.as_str().to_string());
                ("failed", None, Some(f.message.clone()))
            }
        };
        records.push(MaterialRecord {
            agent: planned.name.as_str().to_string(),
            status: status.into(),
            content,
            error,
            priority: u32::from(planned.priority),
            focus: planned.focus.clone(),
        });
    }
    let retriable = |e: crate::library::LibraryError| Failure::retriable(e.to_string());
    s.library
        .put_materials(&data.document_id, &records)
        .await
        .map_err(retriable)?;
    s.library
        .set_status(&data.document_id, DocumentStatus::Ready, None, None)
        .await
        .map_err(retriable)?;
    Ok(Stored {
        ready: records.len() - failed_agents.len(),
        failed: failed_agents.len(),
        failed_agents,
    })
}
