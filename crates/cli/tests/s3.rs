//! Uploads kept in S3: a real `learnflow serve` with `LEARNFLOW_BLOB_URL=s3://…` against
//! a real S3-compatible server (moto, from PyPI, which `scripts/test.sh` installs). The
//! file is streamed there as a multipart upload, the pipeline reads it back, and
//! deleting the document deletes the object.

#[path = "serve/harness.rs"]
mod harness;

use harness::{eventually, sample_variant, Server};

async fn list_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{endpoint}/{bucket}?list-type=2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_live_in_s3_and_go_with_their_document() {
    let Some(moto) = harness::Moto::start() else {
        return;
    };
    moto.bucket("learnflow-test").await;
    let endpoint = moto.endpoint.clone();

    let env = moto.env("s3://learnflow-test/uploads");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&env);
    let c = server.client(&server.create_user("s3user"));
    let r = c.upload("bio.md", sample_variant("s3"), &[]).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let doc = r.json["documentId"].as_str().unwrap().to_string();
    eventually("the document to be ready", async || {
        (c.get(&format!("/api/documents/{doc}")).await.json["status"] == "ready").then_some(())
    })
    .await;
    let keys = list_keys(&endpoint, "learnflow-test").await;
    let hash = c.get(&format!("/api/documents/{doc}")).await.json["contentHash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("uploads/usr_") && keys[0].ends_with(&hash),
        "{keys:?}"
    );
    assert!(
        !server.dir.join("blobs").exists(),
        "nothing went to the local folder"
    );
    // The answer cites the text that was read back from S3.
    let a = c
        .post_json(
            &format!("/api/documents/{doc}/ask"),
            &serde_json::json!({ "question": "What does chlorophyll absorb?" }),
        )
        .await;
    assert!(a.json["answer"].as_str().unwrap().contains("[p. "), "{}", a.text);
    assert_eq!(c.delete(&format!("/api/documents/{doc}")).await.status, 204);
    assert!(list_keys(&endpoint, "learnflow-test").await.is_empty());
}
