//! The library in SQLite (the same file as the engine's store; its own tables and its
//! own schema version in `library_meta`). Vectors are little-endian `f32` blobs,
//! searched exactly (a document has at most a few thousand chunks); full text uses an
//! FTS5 table with the Porter stemmer. Both rankings are fused by reciprocal rank
//! (`ranking`, shared with the PostgreSQL library; ties in document order).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use learnflow_ai::doc::{Chunk, DocumentText, PageText};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::ranking::{self, query_words};
use super::{DocumentRecord, DocumentStatus, Library, LibraryError, MaterialRecord, Passage, TurnRecord};

const SCHEMA: &[&str] = &[r#"
CREATE TABLE IF NOT EXISTS library_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, file_name TEXT NOT NULL, content_hash TEXT NOT NULL,
    blob_key TEXT NOT NULL, size INTEGER NOT NULL, purpose TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, run_id TEXT, title TEXT, kind TEXT, pages INTEGER, ocr_pages TEXT, embed_model TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX documents_by_user ON documents(user_id, created_at);
CREATE INDEX documents_by_hash ON documents(user_id, content_hash);
CREATE TABLE pages (
    document_id TEXT NOT NULL, number INTEGER NOT NULL, text TEXT NOT NULL, headings TEXT NOT NULL,
    PRIMARY KEY (document_id, number)
) WITHOUT ROWID;
CREATE TABLE chunks (
    document_id TEXT NOT NULL, chunk_id TEXT NOT NULL, idx INTEGER NOT NULL, page INTEGER NOT NULL,
    heading TEXT, text TEXT NOT NULL, embedding BLOB,
    PRIMARY KEY (document_id, chunk_id)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, document_id UNINDEXED, chunk_id UNINDEXED, tokenize = 'porter unicode61');
CREATE TABLE materials (
    document_id TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL, content TEXT, error TEXT,
    priority INTEGER NOT NULL, focus TEXT NOT NULL,
    PRIMARY KEY (document_id, agent)
) WITHOUT ROWID;
CREATE TABLE turns (
    thread_id TEXT NOT NULL, document_id TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, detail TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (user_id, document_id, thread_id, seq)
) WITHOUT ROWID;
"#];

/// The SQLite library.
pub struct SqliteLibrary {
    conn: Arc<Mutex<Connection>>,
}

fn db(e: rusqlite::Error) -> LibraryError {
    LibraryError::Database(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteLibrary {
    /// Opens the library tables in the database at `path` (creating them).
    pub fn open(path: &Path) -> Result<Self, LibraryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LibraryError::Database(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS library_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(db)?;
        let version: i64 = conn
            .query_row(
                "SELECT value FROM library_meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if version > SCHEMA.len() as i64 {
            return Err(LibraryError::Database(format!(
                "the library schema version {version} is newer than this binary knows ({}); use a newer learnflow",
                SCHEMA.len()
            )));
        }
        for (i, sql) in SCHEMA.iter().enumerate().skip(version as usize) {
            let v = i + 1;
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {sql}; INSERT OR REPLACE INTO library_meta (key, value) VALUES ('schema_version', '{v}'); COMMIT;"
            ))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                db(e)
            })?;
        }
        Ok(SqliteLibrary {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, LibraryError> + Send + 'static,
    ) -> Result<R, LibraryError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| LibraryError::Database(format!("library task failed: {e}")))?
    }
}

const DOC_COLUMNS: &str =
    "id, user_id, file_name, content_hash, blob_key, size, purpose, status, error, run_id, \
                           title, kind, pages, embed_model, created_at, updated_at";

fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentRecord> {
    let status: String = r.get(7)?;
    Ok(DocumentRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        file_name: r.get(2)?,
        content_hash: r.get(3)?,
        blob_key: r.get(4)?,
        size: r.get::<_, i64>(5)?.max(0) as u64,
        purpose: r.get(6)?,
        status: DocumentStatus::parse(&status).unwrap_or(DocumentStatus::Failed),
        error: r.get(8)?,
        run_id: r.get(9)?,
        title: r.get(10)?,
        kind: r.get(11)?,
        pages: r.get::<_, Option<i64>>(12)?.map(|p| p.max(0) as u32),
        embed_model: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// An FTS5 query matching any of the question's words (each quoted, so no word is read
/// as FTS syntax).
pub fn fts_query(query: &str) -> Option<String> {
    let words: Vec<String> = query_words(query)
        .into_iter()
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

#[async_trait]
impl Library for SqliteLibrary {
    async fn put_document(&self, d: &DocumentRecord) -> Result<(), LibraryError> {
        let d = d.clone();
        self.with(move |c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO documents ({DOC_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                ),
                params![
                    d.id,
                    d.user_id,
                    d.file_name,
                    d.content_hash,
                    d.blob_key,
                    d.size as i64,
                    d.purpose,
                    d.status.as_str(),
                    d.error,
                    d.run_id,
                    d.title,
                    d.kind,
                    d.pages.map(i64::from),
                    d.embed_model,
                    d.created_at,
                    d.updated_at
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn document(&self, user_id: &str, id: &str) -> Result<Option<DocumentRecord>, LibraryError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1 AND user_id = ?2"),
                params![id, user_id],
                doc_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn document_any(&self, id: &str) -> Result<Option<DocumentRecord>, LibraryError> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"),
                params![id],
                doc_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn document_by_hash(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<DocumentRecord>, LibraryError> {
        let (user_id, hash) = (user_id.to_string(), hash.to_string());
        self.with(move |c| {
            c.query_row(
                &format!(
                    "SELECT {DOC_COLUMNS} FROM documents WHERE user_id = ?1 AND content_hash = ?2 ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                params![user_id, hash],
                doc_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn documents(&self, user_id: &str) -> Result<Vec<DocumentRecord>, LibraryError> {
        let user_id = user_id.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {DOC_COLUMNS} FROM documents WHERE user_id = ?1 ORDER BY created_at DESC, id DESC"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![user_id], doc_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    async fn set_status(
        &self,
        id: &str,
        status: DocumentStatus,
        error: Option<&str>,
        run_id: Option<&str>,
    ) -> Result<(), LibraryError> {
        let (id, error, run_id) = (
            id.to_string(),
            error.map(str::to_string),
            run_id.map(str::to_string),
        );
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE documents SET status = ?2, error = ?3, run_id = COALESCE(?4, run_id), updated_at = ?5 WHERE id = ?1",
                    params![id, status.as_str(), error, run_id, now_ms()],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(LibraryError::NotFound(id));
            }
            Ok(())
        })
        .await
    }

    async fn put_text(
        &self,
        id: &str,
        text: &DocumentText,
        chunks: &[Chunk],
        kind: &str,
        ocr_pages: &[u32],
    ) -> Result<(), LibraryError> {
        let (id, text, chunks, kind) = (id.to_string(), text.clone(), chunks.to_vec(), kind.to_string());
        let ocr = serde_json::to_string(ocr_pages).unwrap_or_else(|_| "[]".into());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            tx.execute("DELETE FROM pages WHERE document_id = ?1", params![id]).map_err(db)?;
            tx.execute("DELETE FROM chunks WHERE document_id = ?1", params![id]).map_err(db)?;
            tx.execute("DELETE FROM chunks_fts WHERE document_id = ?1", params![id]).map_err(db)?;
            for p in &text.pages {
                let headings = serde_json::to_string(&p.headings).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "INSERT INTO pages (document_id, number, text, headings) VALUES (?1, ?2, ?3, ?4)",
                    params![id, p.number, p.text, headings],
                )
                .map_err(db)?;
            }
            for ch in &chunks {
                tx.execute(
                    "INSERT INTO chunks (document_id, chunk_id, idx, page, heading, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, ch.id, ch.index as i64, ch.page, ch.heading, ch.text],
                )
                .map_err(db)?;
                tx.execute(
                    "INSERT INTO chunks_fts (text, document_id, chunk_id) VALUES (?1, ?2, ?3)",
                    params![ch.text, id, ch.id],
                )
                .map_err(db)?;
            }
            tx.execute(
                "UPDATE documents SET title = ?2, kind = ?3, pages = ?4, ocr_pages = ?5, embed_model = NULL, updated_at = ?6 WHERE id = ?1",
                params![id, text.title, kind, text.pages.len() as i64, ocr, now_ms()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn text(&self, id: &str) -> Result<Option<(DocumentText, Vec<Chunk>)>, LibraryError> {
        let id = id.to_string();
        self.with(move |c| {
            let title: Option<Option<String>> = c
                .query_row("SELECT title FROM documents WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let Some(title) = title else { return Ok(None) };
            let mut st = c
                .prepare("SELECT number, text, headings FROM pages WHERE document_id = ?1 ORDER BY number")
                .map_err(db)?;
            let pages = st
                .query_map(params![id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            if pages.is_empty() {
                return Ok(None);
            }
            let mut doc = DocumentText {
                title: title.unwrap_or_default(),
                pages: Vec::with_capacity(pages.len()),
            };
            for (number, text, headings) in pages {
                doc.pages.push(PageText {
                    number: number.max(0) as u32,
                    text,
                    headings: serde_json::from_str(&headings).map_err(|e| LibraryError::Corrupt(e.to_string()))?,
                });
            }
            let mut st = c
                .prepare("SELECT chunk_id, idx, page, heading, text FROM chunks WHERE document_id = ?1 ORDER BY idx")
                .map_err(db)?;
            let chunks = st
                .query_map(params![id], |r| {
                    Ok(Chunk {
                        id: r.get(0)?,
                        index: r.get::<_, i64>(1)?.max(0) as usize,
                        page: r.get::<_, i64>(2)?.max(0) as u32,
                        heading: r.get(3)?,
                        text: r.get(4)?,
                    })
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(Some((doc, chunks)))
        })
        .await
    }

    async fn put_embeddings(
        &self,
        id: &str,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), LibraryError> {
        let (id, model, vectors) = (id.to_string(), model.to_string(), vectors.to_vec());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            for (chunk, v) in &vectors {
                tx.execute(
                    "UPDATE chunks SET embedding = ?3 WHERE document_id = ?1 AND chunk_id = ?2",
                    params![id, chunk, vector_bytes(v)],
                )
                .map_err(db)?;
            }
            tx.execute(
                "UPDATE documents SET embed_model = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, model, now_ms()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn search(
        &self,
        id: &str,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Passage>, LibraryError> {
        let (id, query, qv) = (
            id.to_string(),
            query.to_string(),
            query_vector.map(<[f32]>::to_vec),
        );
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT chunk_id, idx, page, heading, text, embedding FROM chunks WHERE document_id = ?1 ORDER BY idx",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok((
                        Chunk {
                            id: r.get(0)?,
                            index: r.get::<_, i64>(1)?.max(0) as usize,
                            page: r.get::<_, i64>(2)?.max(0) as u32,
                            heading: r.get(3)?,
                            text: r.get(4)?,
                        },
                        r.get::<_, Option<Vec<u8>>>(5)?,
                    ))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            let depth = ranking::depth(k);
            let vector_hits = match &qv {
                Some(qv) => ranking::rank_by_similarity(
                    rows.iter()
                        .filter_map(|(ch, emb)| emb.as_ref().map(|e| (ranking::cosine(qv, &bytes_vector(e)), ch)))
                        .collect(),
                    depth,
                ),
                None => Vec::new(),
            };
            let mut text_hits = Vec::new();
            if let Some(q) = fts_query(&query) {
                // Every hit with its score; ties are then broken by document order, which
                // SQLite's ORDER BY would leave undefined.
                let mut st = c
                    .prepare(
                        "SELECT chunk_id, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?1 AND document_id = ?2",
                    )
                    .map_err(db)?;
                let hits = st
                    .query_map(params![q, id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                let by_id: HashMap<&str, &Chunk> = rows.iter().map(|(c, _)| (c.id.as_str(), c)).collect();
                let scored = hits
                    .iter()
                    .filter_map(|(chunk_id, score)| by_id.get(chunk_id.as_str()).map(|c| (*score, *c)))
                    .collect();
                text_hits = ranking::rank_by_bm25(scored, depth);
            }
            Ok(ranking::fuse(&vector_hits, &text_hits, k))
        })
        .await
    }

    async fn put_materials(&self, id: &str, materials: &[MaterialRecord]) -> Result<(), LibraryError> {
        let (id, materials) = (id.to_string(), materials.to_vec());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            for m in &materials {
                tx.execute(
                    "INSERT OR REPLACE INTO materials (document_id, agent, status, content, error, priority, focus)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        m.agent,
                        m.status,
                        m.content.as_ref().map(|v| v.to_string()),
                        m.error,
                        m.priority,
                        m.focus
                    ],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn materials(&self, id: &str) -> Result<Vec<MaterialRecord>, LibraryError> {
        let id = id.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT agent, status, content, error, priority, focus FROM materials WHERE document_id = ?1
                     ORDER BY priority, agent",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter()
                .map(|(agent, status, content, error, priority, focus)| {
                    Ok(MaterialRecord {
                        agent,
                        status,
                        content: content
                            .map(|t| serde_json::from_str(&t))
                            .transpose()
                            .map_err(|e| LibraryError::Corrupt(e.to_string()))?,
                        error,
                        priority: priority.max(0) as u32,
                        focus,
                    })
                })
                .collect()
        })
        .await
    }

    async fn delete_document(&self, user_id: &str, id: &str) -> Result<bool, LibraryError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            let n = tx
                .execute(
                    "DELETE FROM documents WHERE id = ?1 AND user_id = ?2",
                    params![id, user_id],
                )
                .map_err(db)?;
            if n > 0 {
                for table in ["pages", "chunks", "chunks_fts", "materials", "turns"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE document_id = ?1"),
                        params![id],
                    )
                    .map_err(db)?;
                }
            }
            tx.commit().map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn turns(
        &self,
        user_id: &str,
        document_id: &str,
        thread_id: &str,
    ) -> Result<Vec<TurnRecord>, LibraryError> {
        let (u, d, t) = (
            user_id.to_string(),
            document_id.to_string(),
            thread_id.to_string(),
        );
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT question, answer, detail, at FROM turns WHERE user_id = ?1 AND document_id = ?2 AND thread_id = ?3
                     ORDER BY seq",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![u, d, t], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter()
                .map(|(question, answer, detail, at)| {
                    Ok(TurnRecord {
                        question,
                        answer,
                        detail: serde_json::from_str(&detail).map_err(|e| LibraryError::Corrupt(e.to_string()))?,
                        at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn add_turn(
        &self,
        user_id: &str,
        document_id: &str,
        thread_id: &str,
        turn: &TurnRecord,
    ) -> Result<(), LibraryError> {
        let (u, d, t, turn) = (
            user_id.to_string(),
            document_id.to_string(),
            thread_id.to_string(),
            turn.clone(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO turns (thread_id, document_id, user_id, seq, question, answer, detail, at)
                 VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE user_id = ?3 AND document_id = ?2 AND thread_id = ?1),
                         ?4, ?5, ?6, ?7)",
                params![t, d, u, turn.question, turn.answer, turn.detail.to_string(), turn.at],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_quote_words_and_drop_stopwords() {
        assert_eq!(
            fts_query("What is photosynthesis?").as_deref(),
            Some("\"photosynthesis\"")
        );
        // FTS syntax in a question is quoted away, not interpreted.
        assert_eq!(
            fts_query("NEAR(cell wall) OR \"light*"),
            Some("\"near\" OR \"cell\" OR \"wall\" OR \"light\"".into())
        );
        assert_eq!(fts_query("what is it?"), None);
    }

    #[test]
    fn vectors_round_trip_and_cosine_ranks() {
        let v = vec![0.5f32, -0.25, 1.0];
        assert_eq!(bytes_vector(&vector_bytes(&v)), v);
        assert!(ranking::cosine(&[1.0, 0.0], &[1.0, 0.0]) > ranking::cosine(&[1.0, 0.0], &[0.0, 1.0]));
    }
}
