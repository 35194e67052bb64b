#![allow(dead_code)] // each test binary uses a part of the harness
//! A real `learnflow serve` on a loopback port, and a client for it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_learnflow");
pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/photosynthesis.md");

/// A running server.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub fn command(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir);
    for var in [
        "DATABASE_URL",
        "LEARNFLOW_CONFIG",
        "LEARNFLOW_PROVIDER",
        "OPENAI_API_KEY",
        "LEARNFLOW_LISTEN",
    ] {
        c.env_remove(var);
    }
    c.env("LEARNFLOW_EMBEDDER", "hash");
    c.env("LEARNFLOW_WEBHOOK_BACKOFF_MS", "200");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

impl Server {
    /// Starts a server in a new data directory.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, env);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory (the admin token is only printed
    /// on the first start; pass it back in `admin`).
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_in_with_args(dir, env, &[])
    }

    /// Like [`Server::start_in`], with more `serve` arguments.
    pub fn start_in_with_args(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut child = command(dir, env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("learnflow serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines.next().expect("server printed its address").unwrap();
            if line.starts_with("lf_") {
                admin = line.trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("LearnFlow listening on ") {
                break addr.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            admin,
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// Keeps `dir` alive as long as the server.
    pub fn keep(&mut self, dir: tempfile::TempDir) {
        self._tmp = Some(dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `learnflow users create NAME` on this server's data directory; returns the token.
    pub fn create_user(&self, name: &str) -> String {
        let out = command(&self.dir, &[])
            .args(["users", "create", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().last().unwrap().trim().to_string()
    }

    pub fn client(&self, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            token: token.to_string(),
            base: self.base.clone(),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API client with a token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
    pub base: String,
}

/// An answer: status and parsed JSON (Null when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub async fn from_response(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            json,
            text,
            headers,
        }
    }

    /// The error message of an error answer.
    pub fn message(&self) -> String {
        self.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Client {
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::from_response(self.req(reqwest::Method::GET, path).send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        Answer::from_response(self.req(reqwest::Method::DELETE, path).send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        Answer::from_response(
            self.req(reqwest::Method::POST, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        Answer::from_response(
            self.req(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Uploads bytes as a multipart form.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> Answer {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        Answer::from_response(
            self.req(reqwest::Method::POST, "/api/documents")
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Reads SSE events of a document until `stop` says so (or the stream ends).
    pub async fn events_until(
        &self,
        doc: &str,
        last_event_id: Option<&str>,
        mut stop: impl FnMut(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let mut req = self.req(reqwest::Method::GET, &format!("/api/documents/{doc}/events"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        read_sse(resp, &mut stop, Duration::from_secs(120)).await
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Parses an SSE response until `stop` returns true for an event, the stream ends, or
/// the timeout passes (a panic).
pub async fn read_sse(
    mut resp: reqwest::Response,
    stop: &mut impl FnMut(&SseEvent) -> bool,
    timeout: Duration,
) -> Vec<SseEvent> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = String::new();
    let mut out = Vec::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("SSE timed out; got {out:?}"))
            .unwrap();
        let Some(chunk) = chunk else { return out };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = SseEvent::default();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    ev.id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("event:") {
                    ev.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !ev.data.is_empty() {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if ev.event.is_empty() && ev.data.is_empty() {
                continue; // keep-alive comment
            }
            let done = stop(&ev);
            out.push(ev);
            if done {
                return out;
            }
        }
    }
}

/// Waits until `f` gives Some, polling.
pub async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn sample() -> Vec<u8> {
    std::fs::read(SAMPLE).unwrap()
}

/// The sample with a marker appended, so each upload has different bytes.
pub fn sample_variant(tag: &str) -> Vec<u8> {
    let mut b = sample();
    b.extend_from_slice(format!("\n\nThis copy is number {tag}.\n").as_bytes());
    b
}

/// A real S3-compatible server (moto, from PyPI; `scripts/test.sh` installs it and
/// sets `LEARNFLOW_MOTO_SERVER`) on a free loopback port, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto, or `None` (loudly) outside CI when it is not installed.
    pub fn start() -> Option<Moto> {
        let path = std::env::var("LEARNFLOW_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("moto_server"));
        let found = Command::new(&path)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("moto_server is not available (scripts/test.sh installs it; or set LEARNFLOW_MOTO_SERVER)");
            }
            eprintln!(
                "WARNING: SKIPPING an S3 test: moto_server is not available (run scripts/test.sh or set LEARNFLOW_MOTO_SERVER)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Creates a bucket.
    pub async fn bucket(&self, name: &str) {
        let made = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "bucket: {}", made.status());
    }

    /// The environment that points `learnflow` at `s3://BUCKET/PREFIX` here.
    pub fn env(&self, blob_url: &str) -> Vec<(String, String)> {
        [
            ("LEARNFLOW_BLOB_URL", blob_url),
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
