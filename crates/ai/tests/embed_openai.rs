//! OpenAiEmbedder against a hand-written HTTP/1.1 server on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use learnflow_ai::embed::{EmbedError, Embedder, OpenAiConfig, OpenAiEmbedder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn inputs(&self) -> Vec<String> {
        self.body["input"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Response {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Starts a server that answers every request with `handler`; returns its address and the
/// log of requests. It serves until the test's runtime shuts down.
async fn serve(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            let log = Arc::clone(&log2);
            tokio::spawn(async move {
                let _ = handle(stream, handler, log).await;
            });
        }
    });
    (addr, log)
}

async fn handle(
    mut stream: TcpStream,
    handler: Handler,
    log: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line.split(' ').nth(1).unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&buf[header_end..]).unwrap_or(serde_json::Value::Null);
    let request = Request { path, headers, body };
    let response = handler(&request);
    log.lock().unwrap().push(request);

    tokio::time::sleep(response.delay).await;
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&response.body);
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

/// Answers with vector `[n + 1, 2, 0]` for input number n, listed in reverse order.
fn reversed_embeddings(req: &Request) -> Response {
    let n = req.inputs().len();
    let data: Vec<serde_json::Value> = (0..n)
        .rev()
        .map(|i| serde_json::json!({"object": "embedding", "index": i, "embedding": [i as f32 + 1.0, 2.0, 0.0]}))
        .collect();
    Response::json(
        200,
        serde_json::json!({"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
    )
}

fn embedder(addr: SocketAddr, key: &str) -> OpenAiEmbedder {
    OpenAiEmbedder::new(OpenAiConfig::new(format!("http://{addr}/v1/"), key, "test-model")).unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}")).collect()
}

fn assert_unit_and_close(v: &[f32], raw: [f32; 3]) {
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (got, want) in v.iter().zip(raw) {
        assert!((got - want / norm).abs() < 1e-6, "{v:?} vs {raw:?}");
    }
}

#[tokio::test]
async fn success_orders_by_index_normalises_and_learns_dimensions() {
    let (addr, log) = serve(Arc::new(reversed_embeddings)).await;
    let e = embedder(addr, "sk-test");
    assert_eq!(e.model_id(), "openai:test-model");
    assert_eq!(e.dimensions(), 0, "unknown before the first response");

    let out = e.embed(&texts(3)).await.unwrap();
    assert_eq!(out.len(), 3);
    for (i, v) in out.iter().enumerate() {
        assert_unit_and_close(v, [i as f32 + 1.0, 2.0, 0.0]);
    }
    assert_eq!(e.dimensions(), 3);

    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v1/embeddings");
    assert_eq!(log[0].body["model"], "test-model");
    assert_eq!(log[0].inputs(), texts(3));
}

#[tokio::test]
async fn large_inputs_are_sent_in_batches_of_96() {
    let (addr, log) = serve(Arc::new(reversed_embeddings)).await;
    let e = embedder(addr, "");
    let out = e.embed(&texts(200)).await.unwrap();
    assert_eq!(out.len(), 200);
    // Input 150 is the 55th of the second batch, so it got vector [55, 2, 0].
    assert_unit_and_close(&out[150], [55.0, 2.0, 0.0]);
    let sizes: Vec<usize> = log.lock().unwrap().iter().map(|r| r.inputs().len()).collect();
    assert_eq!(sizes, vec![96, 96, 8]);
}

#[tokio::test]
async fn authorization_header_is_sent_only_with_a_key() {
    let (addr, log) = serve(Arc::new(reversed_embeddings)).await;
    embedder(addr, "sk-secret").embed(&texts(1)).await.unwrap();
    embedder(addr, "").embed(&texts(1)).await.unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log[0].header("authorization"), Some("Bearer sk-secret"));
    assert_eq!(log[1].header("authorization"), None);
}

#[tokio::test]
async fn rate_limit_gives_retry_after() {
    let (addr, _) = serve(Arc::new(|_: &Request| Response {
        headers: vec![("retry-after", "7".into())],
        ..Response::json(
            429,
            serde_json::json!({"error": {"message": "Rate limit reached"}}),
        )
    }))
    .await;
    let err = embedder(addr, "k").embed(&texts(2)).await.unwrap_err();
    assert!(matches!(err, EmbedError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_transient());
    assert!(err.to_string().contains("Rate limit reached"), "{err}");
}

#[tokio::test]
async fn client_error_is_permanent_with_the_server_message() {
    let (addr, _) = serve(Arc::new(|_: &Request| {
        Response::json(
            400,
            serde_json::json!({"error": {"message": "The model `test-model` does not exist"}}),
        )
    }))
    .await;
    let err = embedder(addr, "k").embed(&texts(1)).await.unwrap_err();
    match &err {
        EmbedError::Rejected { status, message } => {
            assert_eq!(*status, 400);
            assert_eq!(message, "The model `test-model` does not exist");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn server_error_is_transient() {
    let (addr, _) = serve(Arc::new(|_: &Request| Response {
        body: "upstream exploded".into(),
        ..Response::json(500, 0.into())
    }))
    .await;
    let err = embedder(addr, "k").embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::ServerError { status: 500, message } if message == "upstream exploded")
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let (addr, _) = serve(Arc::new(|_: &Request| Response {
        body: "{\"data\": [oops".into(),
        ..Response::json(200, 0.into())
    }))
    .await;
    let err = embedder(addr, "k").embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::BadResponse(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("not an embeddings response") && text.contains("{\"data\": [oops"),
        "{text}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn wrong_count_bad_index_and_changing_dimensions_are_rejected() {
    let (addr, _) = serve(Arc::new(|req: &Request| {
        let data = match req.inputs()[0].as_str() {
            "count" => serde_json::json!([{"index": 0, "embedding": [1.0]}]),
            "index" => {
                serde_json::json!([{"index": 5, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}])
            }
            "dims" => {
                serde_json::json!([{"index": 0, "embedding": [1.0, 0.0]}, {"index": 1, "embedding": [1.0]}])
            }
            _ => serde_json::json!([]),
        };
        Response::json(200, serde_json::json!({ "data": data }))
    }))
    .await;
    let e = embedder(addr, "");
    for first in ["count", "index", "dims"] {
        let input = vec![first.to_string(), "second".to_string()];
        let err = e.embed(&input).await.unwrap_err();
        assert!(matches!(err, EmbedError::BadResponse(_)), "{first}: {err:?}");
    }
}

#[tokio::test]
async fn timeout_and_refused_connection_are_transient() {
    let (addr, _) = serve(Arc::new(|req: &Request| Response {
        delay: Duration::from_secs(3),
        ..reversed_embeddings(req)
    }))
    .await;
    let mut cfg = OpenAiConfig::new(format!("http://{addr}/v1"), "", "m");
    cfg.timeout = Duration::from_millis(300);
    let err = OpenAiEmbedder::new(cfg)
        .unwrap()
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Timeout(_)), "{err:?}");
    assert!(err.is_transient());

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let err = embedder(closed_addr, "").embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::Network(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn empty_text_fails_before_any_request() {
    let (addr, log) = serve(Arc::new(reversed_embeddings)).await;
    let err = embedder(addr, "")
        .embed(&["ok".into(), "  ".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::EmptyInput { index: 1 }));
    assert!(log.lock().unwrap().is_empty());
    assert!(embedder(addr, "").embed(&[]).await.unwrap().is_empty());
}
