//! The offline provider (placeholder until the agents land).

use async_trait::async_trait;

use super::{ChatProvider, ChatRequest, ChatResponse, ProviderError};

/// The structured task a computing provider answers.
#[derive(Clone, Debug)]
pub enum LocalTask {}

/// The offline provider.
#[derive(Debug, Default)]
pub struct LocalProvider;

#[async_trait]
impl ChatProvider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        "learnflow-local-nlp"
    }

    fn supports_tools(&self) -> bool {
        false
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Err(ProviderError::Unsupported {
            provider: "local".into(),
            task: request.task.clone(),
            message: "not yet".into(),
        })
    }
}
