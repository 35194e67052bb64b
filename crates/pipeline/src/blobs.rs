//! Blob storage for uploaded files, through `object_store`: a local folder by default
//! (S3 and friends arrive with the multi-node issue).

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

/// Blob storage failures.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not a valid object path.
    #[error("invalid blob key '{key}': {message}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// No blob with this key.
    #[error("blob '{0}' not found")]
    NotFound(String),
    /// The storage failed.
    #[error("blob storage error: {0}")]
    Storage(String),
}

/// Where uploaded files live.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobStore({})", self.inner)
    }
}

/// The key of a user's file: `<user>/<sha256>`.
pub fn blob_key(user_id: &str, sha256_hex: &str) -> String {
    let user: String = user_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{user}/{sha256_hex}")
}

/// SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl BlobStore {
    /// Blobs in a local folder (created if needed).
    pub fn local(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::Storage(format!("{}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| BlobError::Storage(e.to_string()))?;
        Ok(BlobStore { inner: Arc::new(fs) })
    }

    /// Blobs in any object store.
    /// Blob storage named by a URL: `file:///path` (or a plain path) for a local folder,
    /// `s3://bucket/prefix` for S3 or an S3-compatible server, configured from the
    /// standard `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …).
    pub fn from_url(url: &str) -> Result<Self, BlobError> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BlobError::Storage(format!("blob URL '{url}' names no bucket")));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| BlobError::Storage(format!("configuring S3 for '{url}': {e}")))?;
            let prefix = prefix.trim_matches('/');
            let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            };
            return Ok(BlobStore { inner });
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Self::local(Path::new(path));
        }
        if url.contains("://") {
            return Err(BlobError::Storage(format!(
                "unsupported blob URL '{url}': expected file:///path or s3://bucket/prefix"
            )));
        }
        Self::local(Path::new(url))
    }

    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        BlobStore { inner }
    }

    fn path(key: &str) -> Result<ObjectPath, BlobError> {
        ObjectPath::parse(key).map_err(|e| BlobError::BadKey {
            key: key.to_string(),
            message: e.to_string(),
        })
    }

    /// Stores bytes under `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.inner
            .put(&Self::path(key)?, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| BlobError::Storage(e.to_string()))
    }

    /// Reads the bytes under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        match self.inner.get(&Self::path(key)?).await {
            Ok(r) => r
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| BlobError::Storage(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(key.to_string())),
            Err(e) => Err(BlobError::Storage(e.to_string())),
        }
    }

    /// Removes the blob (no error if it is gone).
    /// Starts writing the blob `key` piece by piece (a multipart upload, so a large
    /// file never sits in memory whole).
    pub async fn writer(&self, key: &str) -> Result<BlobWriter, BlobError> {
        let upload = self
            .inner
            .put_multipart(&Self::path(key)?)
            .await
            .map_err(|e| BlobError::Storage(e.to_string()))?;
        Ok(BlobWriter {
            inner: object_store::WriteMultipart::new(upload),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Moves a blob to another key (replacing what is there).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), BlobError> {
        self.inner
            .rename(&Self::path(from)?, &Self::path(to)?)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => BlobError::NotFound(from.to_string()),
                e => BlobError::Storage(e.to_string()),
            })
    }

    /// Removes a blob (missing is fine).
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError::Storage(e.to_string())),
        }
    }
}

/// A blob being written; [`BlobWriter::finish`] completes it, dropping it abandons it.
pub struct BlobWriter {
    inner: object_store::WriteMultipart,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Appends bytes (waits when too many parts are in flight).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.inner
            .wait_for_capacity(4)
            .await
            .map_err(|e| BlobError::Storage(e.to_string()))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.inner.write(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the blob; returns its SHA-256 (hex) and size.
    pub async fn finish(self) -> Result<(String, u64), BlobError> {
        self.inner
            .finish()
            .await
            .map_err(|e| BlobError::Storage(e.to_string()))?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }

    /// Abandons the blob.
    pub async fn abort(self) {
        if let Err(e) = self.inner.abort().await {
            tracing::warn!("could not abandon a partial upload: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        assert!(BlobStore::from_url(&url).is_ok());
        for bad in ["ftp://host/x", "s3://", "gs://bucket"] {
            let err = BlobStore::from_url(bad).unwrap_err().to_string();
            assert!(
                err.contains(bad.trim_end_matches('/')) || err.contains("bucket"),
                "{bad}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn blobs_round_trip_in_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let key = blob_key("user 1", &sha256_hex(b"hello"));
        assert!(key.starts_with("user_1/2cf24dba"));
        store.put(&key, b"hello".to_vec()).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), b"hello");
        store.delete(&key).await.unwrap();
        assert!(matches!(store.get(&key).await, Err(BlobError::NotFound(_))));
        assert!(matches!(
            store.get("../etc/passwd").await,
            Err(BlobError::BadKey { .. })
        ));
    }
}
