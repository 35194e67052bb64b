//! The real OpenAI-compatible client and the structured-task runner, against the
//! loopback fake of the hosted API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider, Prices};
use learnflow_ai::provider::{ChatProvider, ChatRequest, Message, OutputSchema, ProviderError, ToolSpec};
use learnflow_ai::record::CallKind;
use learnflow_ai::runner::{run_structured, StructuredTask, TaskError, ToolBox};
use learnflow_ai::schema::Validator;
use learnflow_ai::testing::fake_openai::{FakeConfig, FakeOpenAi, Scripted};
use serde_json::{json, Value};

fn provider(fake: &FakeOpenAi, key: &str) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        base_url: fake.base_url.clone(),
        api_key: key.into(),
        model: "test-model".into(),
        timeout: Duration::from_secs(5),
        prices: Some(Prices {
            input_per_million: 1.0,
            output_per_million: 2.0,
        }),
    })
    .unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object", "additionalProperties": false, "required": ["answer", "source"],
        "properties": {
            "answer": { "type": "string", "minLength": 3 },
            "source": { "type": "object", "additionalProperties": false, "required": ["chunk", "page"],
                        "properties": { "chunk": { "type": "string" }, "page": { "type": "integer", "minimum": 1 } } }
        }
    })
}

fn task(check: bool) -> StructuredTask {
    StructuredTask {
        task: "agent:test".into(),
        messages: vec![
            Message::system("You write study material."),
            Message::user("Excerpt:\n[c0 p.1] Water boils at 100 degrees.\n[c1 p.2] Ice melts at 0 degrees."),
        ],
        schema_name: "test".into(),
        validator: Arc::new(Validator::new(&schema()).unwrap()),
        check: check.then(|| {
            Arc::new(|v: &Value| {
                let chunk = v["source"]["chunk"].as_str().unwrap_or_default();
                if ["c0", "c1"].contains(&chunk) {
                    Ok(())
                } else {
                    Err(format!("source.chunk '{chunk}' is not a chunk of the excerpt"))
                }
            }) as learnflow_ai::runner::Check
        }),
        local: None,
        max_repairs: 2,
        max_tool_rounds: 2,
        max_tokens: None,
    }
}

#[tokio::test]
async fn structured_output_is_requested_with_the_schema_and_validated() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    let p = provider(&fake, "sk-test");
    let out = run_structured(&p, &task(true), None).await.unwrap();
    assert!(["c0", "c1"].contains(&out.output["source"]["chunk"].as_str().unwrap()));
    let req = &fake.requests()[0];
    assert_eq!(req["model"], "test-model");
    assert_eq!(req["response_format"]["type"], "json_schema");
    assert_eq!(req["response_format"]["json_schema"]["schema"], schema());
    assert_eq!(out.calls.len(), 1);
    let call = &out.calls[0];
    assert_eq!(
        (call.kind, call.provider.as_str(), call.model.as_str()),
        (CallKind::Llm, "openai", "test-model")
    );
    assert!(call.input_tokens > 0 && call.output_tokens > 0);
    assert!(call.cost_usd.unwrap() > 0.0);
    assert!(call.prompt.contains("Water boils"));
}

#[tokio::test]
async fn an_invalid_answer_is_sent_back_with_the_error_then_fails() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    fake.push(Scripted::Content(r#"{"answer": "ok"}"#.into()));
    let p = provider(&fake, "");
    let out = run_structured(&p, &task(true), None).await.unwrap();
    assert_eq!(out.calls.len(), 2, "one repair");
    let second = &fake.requests()[1];
    let msgs = second["messages"].as_array().unwrap();
    let last = msgs.last().unwrap()["content"].as_str().unwrap();
    assert!(last.contains("not valid") && last.contains("source"), "{last}");

    for _ in 0..3 {
        fake.push(Scripted::Content(
            r#"{"answer": "okay", "source": {"chunk": "c9", "page": 1}}"#.into(),
        ));
    }
    let err = run_structured(&p, &task(true), None).await.unwrap_err();
    match err {
        TaskError::Invalid {
            errors,
            attempts,
            calls,
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(calls.len(), 3);
            assert!(errors.contains("'c9' is not a chunk"), "{errors}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn http_errors_map_to_retry_after_permanent_and_transient() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    let p = provider(&fake, "sk-test");
    let req = {
        let mut r = ChatRequest::new("t", vec![Message::user("hi")]);
        r.schema = Some(OutputSchema {
            name: "t".into(),
            schema: schema(),
        });
        r
    };
    fake.push(Scripted::Error {
        status: 429,
        retry_after: Some("7".into()),
        message: "slow down".into(),
    });
    let e = p.chat(&req).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(!e.is_permanent());
    assert!(e.to_string().contains("slow down"));
    fake.push(Scripted::Error {
        status: 401,
        retry_after: None,
        message: "invalid api key".into(),
    });
    let e = p.chat(&req).await.unwrap_err();
    assert!(e.is_permanent() && e.to_string().contains("invalid api key") && e.to_string().contains("401"));
    fake.push(Scripted::Error {
        status: 503,
        retry_after: None,
        message: "overloaded".into(),
    });
    let e = p.chat(&req).await.unwrap_err();
    assert!(matches!(e, ProviderError::ServerError { status: 503, .. }));
    assert!(!e.is_permanent() && e.retry_after().is_none());
    fake.push(Scripted::Garbage("<html>proxy error</html>".into()));
    let e = p.chat(&req).await.unwrap_err();
    assert!(matches!(e, ProviderError::BadResponse { .. }), "{e}");
    let auth_sent = fake.requests().len();
    assert_eq!(auth_sent, 4);
}

#[tokio::test]
async fn timeouts_and_unreachable_servers_are_transient() {
    let fake = FakeOpenAi::start(FakeConfig {
        chat_delay: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .unwrap();
    let p = OpenAiProvider::new(OpenAiConfig {
        base_url: fake.base_url.clone(),
        timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let e = p
        .chat(&ChatRequest::new("t", vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e}");
    assert!(!e.is_permanent());
    let p = OpenAiProvider::new(OpenAiConfig {
        base_url: "http://127.0.0.1:9/v1".into(),
        ..Default::default()
    })
    .unwrap();
    let e = p
        .chat(&ChatRequest::new("t", vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Connection { .. }), "{e}");
}

#[tokio::test]
async fn servers_without_json_schema_get_json_mode_then_plain_prompts() {
    let fake = FakeOpenAi::start(FakeConfig {
        reject_json_schema: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let p = provider(&fake, "");
    let out = run_structured(&p, &task(true), None).await.unwrap();
    assert!(out.output["answer"].is_string());
    let reqs = fake.requests();
    assert_eq!(reqs[0]["response_format"]["type"], "json_schema");
    assert_eq!(reqs[1]["response_format"]["type"], "json_object");
    let hint = reqs[1]["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(hint.contains("JSON Schema"), "{hint}");
    // The provider remembers: the next call goes straight to JSON mode.
    run_structured(&p, &task(true), None).await.unwrap();
    assert_eq!(fake.requests()[2]["response_format"]["type"], "json_object");

    let plain = FakeOpenAi::start(FakeConfig {
        reject_json_schema: true,
        reject_json_mode: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let p = provider(&plain, "");
    run_structured(&p, &task(true), None).await.unwrap();
    let reqs = plain.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[2].get("response_format").is_none());
}

struct Search;

#[async_trait]
impl ToolBox for Search {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "search_document".into(),
            description: "Search the document".into(),
            parameters: json!({ "type": "object", "properties": { "query": { "type": "string" } }, "required": ["query"] }),
        }]
    }

    async fn call(&self, name: &str, arguments: &Value) -> Result<Value, String> {
        match name {
            "search_document" => Ok(json!([{ "chunk": "c1", "page": 2,
                "text": format!("result for {}", arguments["query"].as_str().unwrap_or("?")) }])),
            other => Err(format!("no tool named {other}")),
        }
    }
}

#[tokio::test]
async fn tool_calls_are_executed_fed_back_and_recorded() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    fake.push(Scripted::ToolCalls(vec![
        ("search_document".into(), json!({ "query": "melting point" })),
        ("delete_everything".into(), json!({})),
    ]));
    let p = provider(&fake, "");
    let out = run_structured(&p, &task(true), Some(&Search)).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs[0]["tools"][0]["function"]["name"], "search_document");
    let msgs = reqs[1]["messages"].as_array().unwrap();
    let tool_msgs: Vec<&Value> = msgs.iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_msgs.len(), 2);
    assert!(tool_msgs[0]["content"]
        .as_str()
        .unwrap()
        .contains("result for melting point"));
    assert!(tool_msgs[1]["content"]
        .as_str()
        .unwrap()
        .contains("no tool named delete_everything"));
    assert_eq!(tool_msgs[0]["tool_call_id"], "call_0");
    let kinds: Vec<CallKind> = out.calls.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [CallKind::Llm, CallKind::Tool, CallKind::Tool, CallKind::Llm]
    );
    assert_eq!(out.calls[1].provider, "search_document");
    assert!(out.calls[2].error.is_some());
}
