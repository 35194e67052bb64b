//! The library in PostgreSQL (with pgvector), for several nodes sharing one database;
//! its tables are versioned as the component `library` beside the engine's.
//!
//! It behaves as [`super::SqliteLibrary`] does, down to the order of search results:
//!
//! - **Vectors** live in a `vector` column with their dimension count beside it. A
//!   partial HNSW index (cosine) covers the 384-dimension vectors of the shipped
//!   embedders (`embedding::vector(384)` where `dims = 384`), scanned iteratively
//!   (`hnsw.iterative_scan = strict_order`) so that the document filter still leaves
//!   enough rows. The planner takes it when it is cheaper than reading the document's
//!   rows (a large document in a large table). When the index gives fewer rows than
//!   asked, or its last rows could still tie with the top ones (where only document
//!   order may choose), an exact scan decides instead; other sizes are always
//!   searched exactly. The candidates (twice what the fusion uses) are then scored
//!   again with the same `f64` cosine as the SQLite library and ranked with ties in
//!   document order, so pgvector's `f32` arithmetic never reorders them. Chunks whose
//!   vector cannot be compared (other dimensions, all zeros) score 0, as in SQLite.
//!   Through the index, results equal SQLite's as far as HNSW finds the true nearest
//!   candidates (it is approximate; the beam is wide: `hnsw.ef_search` ≥ 100).
//! - **Full text**: each chunk keeps the terms SQLite's FTS5 `porter unicode61`
//!   tokenizer makes of it (`terms`, see `ranking::fts5_terms`); a generated `tsvector`
//!   of them with a GIN index finds the chunks holding a question's words, and BM25 is
//!   computed as FTS5's `bm25()` does, over the same statistics: the number of chunks
//!   and terms in the whole table (kept in `library_text_totals`) and how many chunks
//!   hold each word.
//!
//! Vectors must be finite (pgvector refuses NaN and infinity), with at most 16,000
//! dimensions.

use async_trait::async_trait;
use learnflow_ai::doc::{Chunk, DocumentText, PageText};
use learnflow_store_postgres::{migrate_set, OpError, PgFailure, PgPool, SchemaError, Tx};
use postgres::types::FromSql;
use postgres::Row;
use serde_json::Value;

use super::ranking::{self, fts5_terms, query_words};
use super::{DocumentRecord, DocumentStatus, Library, LibraryError, MaterialRecord, Passage, TurnRecord};

/// The library's migrations, in order (component `library` in `learnflow_schema`).
/// Integers are `BIGINT`, times Unix milliseconds, JSON `JSONB`.
const MIGRATIONS: &[&str] = &[r#"
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE documents (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    file_name     TEXT    NOT NULL,
    content_hash  TEXT    NOT NULL,
    blob_key      TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    purpose       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    error         TEXT,
    run_id        TEXT,
    title         TEXT,
    kind          TEXT,
    pages         BIGINT,
    ocr_pages     BIGINT[],
    embed_model   TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX documents_by_user ON documents(user_id, created_at);
CREATE INDEX documents_by_hash ON documents(user_id, content_hash);

CREATE TABLE pages (
    document_id  TEXT    NOT NULL,
    number       BIGINT  NOT NULL,
    text         TEXT    NOT NULL,
    headings     TEXT[]  NOT NULL,
    PRIMARY KEY (document_id, number)
);

-- terms: the chunk's FTS5 `porter unicode61` terms in order (BM25 counts them);
-- dims: the length of the chunk's vector, NULL before embedding;
-- flat: the vector is all zeros (it has no direction; its similarity is 0).
CREATE TABLE chunks (
    document_id  TEXT     NOT NULL,
    chunk_id     TEXT     NOT NULL,
    idx          BIGINT   NOT NULL,
    page         BIGINT   NOT NULL,
    heading      TEXT,
    text         TEXT     NOT NULL,
    terms        TEXT[]   NOT NULL,
    tsv          tsvector GENERATED ALWAYS AS (array_to_tsvector(terms)) STORED,
    dims         INTEGER,
    flat         BOOLEAN  NOT NULL DEFAULT false,
    embedding    vector,
    PRIMARY KEY (document_id, chunk_id)
);
CREATE INDEX chunks_text ON chunks USING gin (tsv);
CREATE INDEX chunks_vector_384 ON chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;
-- Embedded chunks the HNSW index cannot rank (they score 0 against a 384-dimension
-- question): usually none.
CREATE INDEX chunks_outside_384 ON chunks (document_id, idx) WHERE dims <> 384 OR flat;

-- FTS5 keeps these totals for BM25: every chunk of every document, and their terms.
CREATE TABLE library_text_totals (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    chunks     BIGINT  NOT NULL,
    terms      BIGINT  NOT NULL
);
INSERT INTO library_text_totals (singleton, chunks, terms) VALUES (true, 0, 0);

CREATE TABLE materials (
    document_id  TEXT    NOT NULL,
    agent        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    content      JSONB,
    error        TEXT,
    priority     BIGINT  NOT NULL,
    focus        TEXT    NOT NULL,
    PRIMARY KEY (document_id, agent)
);

CREATE TABLE turns (
    thread_id    TEXT    NOT NULL,
    document_id  TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    question     TEXT    NOT NULL,
    answer       TEXT    NOT NULL,
    detail       JSONB   NOT NULL,
    at           BIGINT  NOT NULL,
    PRIMARY KEY (user_id, document_id, thread_id, seq)
);
CREATE INDEX turns_by_document ON turns(document_id);
"#];

/// The dimension count the HNSW index covers (the shipped embedders').
const INDEXED_DIMS: usize = 384;

/// A key class for `pg_advisory_xact_lock(class, key)`: one writer per thread of turns.
const TURN_LOCK: i32 = 0x4c46_5454; // "LFTT"

macro_rules! doc_columns {
    () => {
        "id, user_id, file_name, content_hash, blob_key, size, purpose, status, error, run_id, \
         title, kind, pages, embed_model, created_at, updated_at"
    };
}

/// The nearest 384-dimension vectors of a document, through the HNSW index.
const VECTOR_NEAREST_384: &str = "SELECT chunk_id, idx, page, heading, text, embedding::text FROM chunks \
     WHERE document_id = $1 AND dims = 384 AND NOT flat \
     ORDER BY embedding::vector(384) <=> $2::text::vector(384) LIMIT $3";

/// The nearest vectors of another size, exactly.
const VECTOR_NEAREST_ANY: &str = "SELECT chunk_id, idx, page, heading, text, embedding::text FROM chunks \
     WHERE document_id = $1 AND dims = $2 AND NOT flat \
     ORDER BY embedding <=> $3::text::vector, idx LIMIT $4";

/// Embedded chunks that score 0 against a 384-dimension question.
const VECTOR_ZERO_384: &str = "SELECT chunk_id, idx, page, heading, text FROM chunks \
     WHERE document_id = $1 AND (dims <> 384 OR flat) ORDER BY idx LIMIT $2";

/// Embedded chunks that score 0 against a question of `$2` dimensions.
const VECTOR_ZERO_ANY: &str = "SELECT chunk_id, idx, page, heading, text FROM chunks \
     WHERE document_id = $1 AND (dims <> $2 OR flat) ORDER BY idx LIMIT $3";

/// Every embedded chunk (an all-zero question is as similar to all of them: 0).
const VECTOR_ALL: &str = "SELECT chunk_id, idx, page, heading, text FROM chunks \
     WHERE document_id = $1 AND dims IS NOT NULL ORDER BY idx LIMIT $2";

/// The PostgreSQL library.
pub struct PostgresLibrary {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLibrary").finish_non_exhaustive()
    }
}

/// A failure inside a transaction: the database's (retried by the pool when
/// transient) or the library's own.
#[derive(Debug)]
enum Fail {
    Db(PgFailure),
    Library(LibraryError),
}

impl From<PgFailure> for Fail {
    fn from(f: PgFailure) -> Self {
        Fail::Db(f)
    }
}

impl OpError for Fail {
    fn failure(&self) -> Option<&PgFailure> {
        match self {
            Fail::Db(f) => Some(f),
            Fail::Library(_) => None,
        }
    }
}

impl From<Fail> for LibraryError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Db(f) => LibraryError::Database(f.to_string()),
            Fail::Library(e) => e,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> Fail {
    Fail::Library(LibraryError::Corrupt(e.to_string()))
}

/// Column `i` of a row, or why it cannot be read.
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, Fail> {
    row.try_get(i).map_err(|e| corrupt(format!("column {i}: {e}")))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn doc_row(r: &Row) -> Result<DocumentRecord, Fail> {
    let status: String = col(r, 7)?;
    Ok(DocumentRecord {
        id: col(r, 0)?,
        user_id: col(r, 1)?,
        file_name: col(r, 2)?,
        content_hash: col(r, 3)?,
        blob_key: col(r, 4)?,
        size: col::<i64>(r, 5)?.max(0) as u64,
        purpose: col(r, 6)?,
        status: DocumentStatus::parse(&status).unwrap_or(DocumentStatus::Failed),
        error: col(r, 8)?,
        run_id: col(r, 9)?,
        title: col(r, 10)?,
        kind: col(r, 11)?,
        pages: col::<Option<i64>>(r, 12)?.map(|p| p.clamp(0, i64::from(u32::MAX)) as u32),
        embed_model: col(r, 13)?,
        created_at: col(r, 14)?,
        updated_at: col(r, 15)?,
    })
}

/// A chunk from the columns `chunk_id, idx, page, heading, text`.
fn chunk_row(r: &Row) -> Result<Chunk, Fail> {
    Ok(Chunk {
        id: col(r, 0)?,
        index: col::<i64>(r, 1)?.max(0) as usize,
        page: col::<i64>(r, 2)?.clamp(0, i64::from(u32::MAX)) as u32,
        heading: col(r, 3)?,
        text: col(r, 4)?,
    })
}

/// pgvector's text form of a vector (`[1e0,-2.5e-1]`); every `f32` survives the trip.
fn vector_text(v: &[f32]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:e}")).collect();
    format!("[{}]", items.join(","))
}

/// Parses pgvector's text form.
fn parse_vector(text: &str) -> Result<Vec<f32>, Fail> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| corrupt(format!("not a vector: {text:.40}")))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .map_err(|e| corrupt(format!("vector element '{x}': {e}")))
        })
        .collect()
}

/// A `tsquery` lexeme, quoted.
fn lexeme(term: &str) -> String {
    format!("'{}'", term.replace('\\', "\\\\").replace('\'', "''"))
}

/// A `tsquery` matching the chunks that hold any of the phrases (a phrase's terms in
/// any order; the order is checked afterwards).
fn tsquery(phrases: &[Vec<String>]) -> String {
    phrases
        .iter()
        .map(|p| match p.as_slice() {
            [one] => lexeme(one),
            many => format!(
                "({})",
                many.iter().map(|t| lexeme(t)).collect::<Vec<_>>().join(" & ")
            ),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Tokenizes on a blocking thread (FTS5 runs in SQLite).
async fn terms_of(texts: Vec<String>) -> Result<Vec<Vec<String>>, LibraryError> {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        fts5_terms(&refs)
    })
    .await
    .map_err(|e| LibraryError::Database(format!("tokenizing task failed: {e}")))?
}

/// What a search reads in one transaction; ranked afterwards.
#[derive(Default)]
struct SearchRows {
    /// Vector candidates and their vectors (empty: similarity 0).
    vector: Vec<(Chunk, Vec<f32>)>,
    /// Whether the nearest vectors came from the HNSW index (else an exact scan).
    through_index: bool,
    /// Full-text statistics and candidates, when the question has words.
    text: Option<TextRows>,
}

struct TextRows {
    /// Chunks in the table.
    chunks: i64,
    /// Terms in the table.
    terms: i64,
    /// Chunks of the whole table holding each phrase.
    hits: Vec<i64>,
    /// The document's chunks holding some phrase's terms, with their terms.
    candidates: Vec<(Chunk, Vec<String>)>,
}

impl PostgresLibrary {
    /// The library on `pool`'s database (its `search_path`), creating or upgrading its
    /// tables (refused when a newer binary migrated them, or the server has no
    /// pgvector).
    pub async fn open(pool: PgPool) -> Result<Self, LibraryError> {
        let has_vector = pool
            .tx(|tx: &mut Tx<'_>| {
                Ok::<_, PgFailure>(
                    tx.query_opt("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'", &[])?
                        .is_some(),
                )
            })
            .await
            .map_err(|e| LibraryError::Database(e.to_string()))?;
        if !has_vector {
            return Err(LibraryError::Database(SchemaError::NoVector.to_string()));
        }
        migrate_set(&pool, "library", MIGRATIONS)
            .await
            .map_err(|e| LibraryError::Database(e.to_string()))?;
        Ok(PostgresLibrary { pool })
    }

    async fn tx<R, F>(&self, f: F) -> Result<R, LibraryError>
    where
        R: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> Result<R, Fail> + Send + 'static,
    {
        Ok(self.pool.tx(f).await?)
    }
}

/// Chunks with their vectors, from the columns `chunk_id, idx, page, heading, text,
/// embedding::text`.
fn with_vectors(rows: &[Row]) -> Result<Vec<(Chunk, Vec<f32>)>, Fail> {
    rows.iter()
        .map(|r| Ok((chunk_row(r)?, parse_vector(&col::<String>(r, 5)?)?)))
        .collect()
}

/// How close (in cosine) a vector the index left out may come to the last of the top
/// `depth` and still be taken for a tie: pgvector's `f32` distances differ from the
/// `f64` cosine in the last digits.
const TIE_MARGIN: f64 = 1e-4;

/// Whether vectors after the last candidate (farther by the index's measure) could
/// still tie with the `depth`-th best: the candidates' similarity has not fallen
/// clearly below it by the end of the list, as on a plateau of equally (un)related
/// chunks.
fn may_tie_beyond(qv: &[f32], candidates: &[(Chunk, Vec<f32>)], depth: usize) -> bool {
    let mut scores: Vec<f64> = candidates.iter().map(|(_, v)| ranking::cosine(qv, v)).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    match (scores.get(depth.saturating_sub(1)), scores.last()) {
        (Some(kth), Some(last)) => *last >= kth - TIE_MARGIN,
        _ => true,
    }
}

/// Reads a search's rows (see [`SearchRows`]).
fn search_rows(
    tx: &mut Tx<'_>,
    id: &str,
    qv: Option<&[f32]>,
    phrases: &[Vec<String>],
    depth: usize,
) -> Result<SearchRows, Fail> {
    let mut out = SearchRows::default();
    if let Some(qv) = qv {
        let zero = qv.iter().all(|x| *x == 0.0);
        let (depth_i, nearest) = (depth as i64, (depth * 2) as i64);
        // Chunks that score 0 whatever the question: in document order, as many as can rank.
        let unranked: Vec<Row>;
        if zero {
            unranked = tx.query(VECTOR_ALL, &[&id, &depth_i])?;
        } else if qv.len() == INDEXED_DIMS {
            // A wide beam: the index's answer must hold the true nearest candidates.
            let ef = (nearest * 4).clamp(100, 1000).to_string();
            tx.query(
                "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'strict_order', true)",
                &[&ef],
            )?;
            let text = vector_text(qv);
            let mut found = with_vectors(&tx.query(VECTOR_NEAREST_384, &[&id, &text, &nearest])?)?;
            out.through_index = true;
            if (found.len() as i64) < nearest || may_tie_beyond(qv, &found, depth) {
                // Fewer than asked (the document has no more, or the index scan gave up
                // on a document that is a small part of the table: pgvector stops after
                // `hnsw.max_scan_tuples`), or vectors beyond the last could tie with the
                // top ones, where only document order may choose: the exact scan,
                // which breaks ties by document order, decides.
                found = with_vectors(&tx.query(
                    VECTOR_NEAREST_ANY,
                    &[&id, &(INDEXED_DIMS as i32), &text, &nearest],
                )?)?;
                out.through_index = false;
            }
            out.vector = found;
            unranked = tx.query(VECTOR_ZERO_384, &[&id, &depth_i])?;
        } else {
            let dims = i32::try_from(qv.len())
                .map_err(|_| corrupt(format!("a question vector of {} dimensions", qv.len())))?;
            out.vector =
                with_vectors(&tx.query(VECTOR_NEAREST_ANY, &[&id, &dims, &vector_text(qv), &nearest])?)?;
            unranked = tx.query(VECTOR_ZERO_ANY, &[&id, &dims, &depth_i])?;
        }
        for r in &unranked {
            out.vector.push((chunk_row(r)?, Vec::new()));
        }
    }
    if !phrases.is_empty() {
        let totals = tx.query_one("SELECT chunks, terms FROM library_text_totals", &[])?;
        let mut hits = Vec::with_capacity(phrases.len());
        for p in phrases {
            // A phrase of several terms must also hold them in order.
            let sequence = (p.len() > 1).then(|| format!(" {} ", p.join(" ")));
            let query = tsquery(std::slice::from_ref(p));
            let n: i64 = col(
                &tx.query_one(
                    "SELECT count(*) FROM chunks WHERE tsv @@ $1::text::tsquery \
                     AND ($2::text IS NULL OR strpos(' ' || array_to_string(terms, ' ') || ' ', $2) > 0)",
                    &[&query, &sequence],
                )?,
                0,
            )?;
            hits.push(n);
        }
        let mut candidates = Vec::new();
        for r in tx.query(
            "SELECT chunk_id, idx, page, heading, text, terms FROM chunks \
             WHERE document_id = $1 AND tsv @@ $2::text::tsquery",
            &[&id, &tsquery(phrases)],
        )? {
            candidates.push((chunk_row(&r)?, col::<Vec<String>>(&r, 5)?));
        }
        out.text = Some(TextRows {
            chunks: col(&totals, 0)?,
            terms: col(&totals, 1)?,
            hits,
            candidates,
        });
    }
    Ok(out)
}

/// Ranks what [`search_rows`] read, as the SQLite library ranks.
fn rank(rows: &SearchRows, qv: Option<&[f32]>, phrases: &[Vec<String>], k: usize) -> Vec<Passage> {
    let depth = ranking::depth(k);
    let vector_hits = match qv {
        Some(qv) => ranking::rank_by_similarity(
            rows.vector
                .iter()
                .map(|(ch, v)| (ranking::cosine(qv, v), ch))
                .collect(),
            depth,
        ),
        None => Vec::new(),
    };
    let mut text_hits = Vec::new();
    if let Some(t) = rows.text.as_ref().filter(|t| t.chunks > 0) {
        // FTS5: avgdl = terms / rows of the whole table.
        let avgdl = t.terms as f64 / t.chunks as f64;
        let idf: Vec<f64> = t.hits.iter().map(|h| ranking::bm25_idf(t.chunks, *h)).collect();
        let scored = t
            .candidates
            .iter()
            .filter_map(|(ch, terms)| {
                let freq: Vec<f64> = phrases
                    .iter()
                    .map(|p| ranking::phrase_count(terms, p) as f64)
                    .collect();
                freq.iter()
                    .any(|f| *f > 0.0)
                    .then(|| (ranking::bm25(&idf, &freq, terms.len() as f64, avgdl), ch))
            })
            .collect();
        text_hits = ranking::rank_by_bm25(scored, depth);
    }
    ranking::fuse(&vector_hits, &text_hits, k)
}

#[async_trait]
impl Library for PostgresLibrary {
    async fn put_document(&self, d: &DocumentRecord) -> Result<(), LibraryError> {
        let d = d.clone();
        self.tx(move |tx| {
            tx.execute(
                concat!(
                    "INSERT INTO documents (",
                    doc_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                     ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, file_name = EXCLUDED.file_name, \
                     content_hash = EXCLUDED.content_hash, blob_key = EXCLUDED.blob_key, size = EXCLUDED.size, \
                     purpose = EXCLUDED.purpose, status = EXCLUDED.status, error = EXCLUDED.error, \
                     run_id = EXCLUDED.run_id, title = EXCLUDED.title, kind = EXCLUDED.kind, \
                     pages = EXCLUDED.pages, ocr_pages = NULL, embed_model = EXCLUDED.embed_model, \
                     created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at"
                ),
                &[
                    &d.id,
                    &d.user_id,
                    &d.file_name,
                    &d.content_hash,
                    &d.blob_key,
                    &(d.size as i64),
                    &d.purpose,
                    &d.status.as_str(),
                    &d.error,
                    &d.run_id,
                    &d.title,
                    &d.kind,
                    &d.pages.map(i64::from),
                    &d.embed_model,
                    &d.created_at,
                    &d.updated_at,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn document(&self, user_id: &str, id: &str) -> Result<Option<DocumentRecord>, LibraryError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.tx(move |tx| {
            tx.query_opt(
                concat!(
                    "SELECT ",
                    doc_columns!(),
                    " FROM documents WHERE id = $1 AND user_id = $2"
                ),
                &[&id, &user_id],
            )?
            .map(|r| doc_row(&r))
            .transpose()
        })
        .await
    }

    async fn document_any(&self, id: &str) -> Result<Option<DocumentRecord>, LibraryError> {
        let id = id.to_string();
        self.tx(move |tx| {
            tx.query_opt(
                concat!("SELECT ", doc_columns!(), " FROM documents WHERE id = $1"),
                &[&id],
            )?
            .map(|r| doc_row(&r))
            .transpose()
        })
        .await
    }

    async fn document_by_hash(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<DocumentRecord>, LibraryError> {
        let (user_id, hash) = (user_id.to_string(), hash.to_string());
        self.tx(move |tx| {
            tx.query_opt(
                concat!(
                    "SELECT ",
                    doc_columns!(),
                    " FROM documents WHERE user_id = $1 AND content_hash = $2 \
                     ORDER BY created_at DESC, id COLLATE \"C\" DESC LIMIT 1"
                ),
                &[&user_id, &hash],
            )?
            .map(|r| doc_row(&r))
            .transpose()
        })
        .await
    }

    async fn documents(&self, user_id: &str) -> Result<Vec<DocumentRecord>, LibraryError> {
        let user_id = user_id.to_string();
        self.tx(move |tx| {
            tx.query(
                concat!(
                    "SELECT ",
                    doc_columns!(),
                    " FROM documents WHERE user_id = $1 ORDER BY created_at DESC, id COLLATE \"C\" DESC"
                ),
                &[&user_id],
            )?
            .iter()
            .map(doc_row)
            .collect()
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
        let now = now_ms();
        self.tx(move |tx| {
            let n = tx.execute(
                "UPDATE documents SET status = $2, error = $3, run_id = COALESCE($4, run_id), updated_at = $5 \
                 WHERE id = $1",
                &[&id, &status.as_str(), &error, &run_id, &now],
            )?;
            if n == 0 {
                return Err(Fail::Library(LibraryError::NotFound(id.clone())));
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
        let terms = terms_of(chunks.iter().map(|c| c.text.clone()).collect()).await?;
        let (id, text, chunks, kind) = (id.to_string(), text.clone(), chunks.to_vec(), kind.to_string());
        let ocr: Vec<i64> = ocr_pages.iter().map(|p| i64::from(*p)).collect();
        let added_terms: i64 = terms.iter().map(|t| t.len() as i64).sum();
        let now = now_ms();
        self.tx(move |tx| {
            // The document's row first: every writer of a document locks in this order.
            tx.execute(
                "UPDATE documents SET title = $2, kind = $3, pages = $4, ocr_pages = $5, embed_model = NULL, \
                 updated_at = $6 WHERE id = $1",
                &[&id, &text.title, &kind, &(text.pages.len() as i64), &ocr, &now],
            )?;
            tx.execute("DELETE FROM pages WHERE document_id = $1", &[&id])?;
            let gone = tx.query_one(
                "WITH gone AS (DELETE FROM chunks WHERE document_id = $1 RETURNING cardinality(terms) AS n) \
                 SELECT count(*), COALESCE(sum(n), 0)::bigint FROM gone",
                &[&id],
            )?;
            let (gone_chunks, gone_terms): (i64, i64) = (col(&gone, 0)?, col(&gone, 1)?);
            for p in &text.pages {
                tx.execute(
                    "INSERT INTO pages (document_id, number, text, headings) VALUES ($1, $2, $3, $4)",
                    &[&id, &i64::from(p.number), &p.text, &p.headings],
                )?;
            }
            for (ch, terms) in chunks.iter().zip(&terms) {
                tx.execute(
                    "INSERT INTO chunks (document_id, chunk_id, idx, page, heading, text, terms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &id,
                        &ch.id,
                        &(ch.index as i64),
                        &i64::from(ch.page),
                        &ch.heading,
                        &ch.text,
                        terms,
                    ],
                )?;
            }
            tx.execute(
                "UPDATE library_text_totals SET chunks = chunks + $1, terms = terms + $2",
                &[&(chunks.len() as i64 - gone_chunks), &(added_terms - gone_terms)],
            )?;
            Ok(())
        })
        .await
    }

    async fn text(&self, id: &str) -> Result<Option<(DocumentText, Vec<Chunk>)>, LibraryError> {
        let id = id.to_string();
        self.tx(move |tx| {
            let Some(doc) = tx.query_opt("SELECT title FROM documents WHERE id = $1", &[&id])? else {
                return Ok(None);
            };
            let title: Option<String> = col(&doc, 0)?;
            let pages = tx.query(
                "SELECT number, text, headings FROM pages WHERE document_id = $1 ORDER BY number",
                &[&id],
            )?;
            if pages.is_empty() {
                return Ok(None);
            }
            let mut text = DocumentText {
                title: title.unwrap_or_default(),
                pages: Vec::with_capacity(pages.len()),
            };
            for p in &pages {
                text.pages.push(PageText {
                    number: col::<i64>(p, 0)?.clamp(0, i64::from(u32::MAX)) as u32,
                    text: col(p, 1)?,
                    headings: col(p, 2)?,
                });
            }
            let chunks = tx
                .query(
                    "SELECT chunk_id, idx, page, heading, text FROM chunks WHERE document_id = $1 ORDER BY idx",
                    &[&id],
                )?
                .iter()
                .map(chunk_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((text, chunks)))
        })
        .await
    }

    async fn put_embeddings(
        &self,
        id: &str,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), LibraryError> {
        let id = id.to_string();
        let model = model.to_string();
        let rows: Vec<(String, Option<String>, i32, bool)> = vectors
            .iter()
            .map(|(chunk, v)| {
                let dims = i32::try_from(v.len()).map_err(|_| {
                    LibraryError::Database(format!("a vector of {} dimensions is too long", v.len()))
                })?;
                let text = (!v.is_empty()).then(|| vector_text(v));
                Ok((chunk.clone(), text, dims, v.iter().all(|x| *x == 0.0)))
            })
            .collect::<Result<_, LibraryError>>()?;
        let now = now_ms();
        self.tx(move |tx| {
            tx.execute(
                "UPDATE documents SET embed_model = $2, updated_at = $3 WHERE id = $1",
                &[&id, &model, &now],
            )?;
            for (chunk, vector, dims, flat) in &rows {
                tx.execute(
                    "UPDATE chunks SET embedding = $3::text::vector, dims = $4, flat = $5 \
                     WHERE document_id = $1 AND chunk_id = $2",
                    &[&id, chunk, vector, dims, flat],
                )?;
            }
            Ok(())
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
        let words = query_words(query);
        let phrases: Vec<Vec<String>> = terms_of(words)
            .await?
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let (id, qv) = (id.to_string(), query_vector.map(<[f32]>::to_vec));
        self.tx(move |tx| {
            let rows = search_rows(tx, &id, qv.as_deref(), &phrases, ranking::depth(k))?;
            tracing::debug!(document = %id, through_index = rows.through_index, "library search");
            Ok(rank(&rows, qv.as_deref(), &phrases, k))
        })
        .await
    }

    async fn put_materials(&self, id: &str, materials: &[MaterialRecord]) -> Result<(), LibraryError> {
        let (id, materials) = (id.to_string(), materials.to_vec());
        self.tx(move |tx| {
            for m in &materials {
                tx.execute(
                    "INSERT INTO materials (document_id, agent, status, content, error, priority, focus) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (document_id, agent) DO UPDATE SET status = EXCLUDED.status, \
                     content = EXCLUDED.content, error = EXCLUDED.error, priority = EXCLUDED.priority, \
                     focus = EXCLUDED.focus",
                    &[
                        &id,
                        &m.agent,
                        &m.status,
                        &m.content,
                        &m.error,
                        &i64::from(m.priority),
                        &m.focus,
                    ],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn materials(&self, id: &str) -> Result<Vec<MaterialRecord>, LibraryError> {
        let id = id.to_string();
        self.tx(move |tx| {
            tx.query(
                "SELECT agent, status, content, error, priority, focus FROM materials WHERE document_id = $1 \
                 ORDER BY priority, agent COLLATE \"C\"",
                &[&id],
            )?
            .iter()
            .map(|r| {
                Ok(MaterialRecord {
                    agent: col(r, 0)?,
                    status: col(r, 1)?,
                    content: col::<Option<Value>>(r, 2)?,
                    error: col(r, 3)?,
                    priority: col::<i64>(r, 4)?.clamp(0, i64::from(u32::MAX)) as u32,
                    focus: col(r, 5)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn delete_document(&self, user_id: &str, id: &str) -> Result<bool, LibraryError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.tx(move |tx| {
            let n = tx.execute(
                "DELETE FROM documents WHERE id = $1 AND user_id = $2",
                &[&id, &user_id],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM pages WHERE document_id = $1", &[&id])?;
            let gone = tx.query_one(
                "WITH gone AS (DELETE FROM chunks WHERE document_id = $1 RETURNING cardinality(terms) AS n) \
                 SELECT count(*), COALESCE(sum(n), 0)::bigint FROM gone",
                &[&id],
            )?;
            let (gone_chunks, gone_terms): (i64, i64) = (col(&gone, 0)?, col(&gone, 1)?);
            tx.execute(
                "UPDATE library_text_totals SET chunks = chunks - $1, terms = terms - $2",
                &[&gone_chunks, &gone_terms],
            )?;
            tx.execute("DELETE FROM materials WHERE document_id = $1", &[&id])?;
            tx.execute("DELETE FROM turns WHERE document_id = $1", &[&id])?;
            Ok(true)
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
        self.tx(move |tx| {
            tx.query(
                "SELECT question, answer, detail, at FROM turns \
                 WHERE user_id = $1 AND document_id = $2 AND thread_id = $3 ORDER BY seq",
                &[&u, &d, &t],
            )?
            .iter()
            .map(|r| {
                Ok(TurnRecord {
                    question: col(r, 0)?,
                    answer: col(r, 1)?,
                    detail: col(r, 2)?,
                    at: col(r, 3)?,
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
        self.tx(move |tx| {
            // One writer per thread at a time, so two nodes never take the same `seq`.
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::text || chr(31) || $3::text || chr(31) || $4::text))",
                &[&TURN_LOCK, &u, &d, &t],
            )?;
            tx.execute(
                "INSERT INTO turns (thread_id, document_id, user_id, seq, question, answer, detail, at) \
                 VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns \
                 WHERE user_id = $3 AND document_id = $2 AND thread_id = $1), $4, $5, $6, $7)",
                &[&t, &d, &u, &turn.question, &turn.answer, &turn.detail, &turn.at],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_survive_the_text_form() {
        let v = vec![0.1f32, -2.5, 1e-45, f32::MAX, 0.0, -0.0, 123_456.79];
        let back = parse_vector(&vector_text(&v))
            .map_err(LibraryError::from)
            .unwrap();
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        // pgvector's own spelling.
        assert_eq!(
            parse_vector("[1e-07,3.4028235e+38,0.5]")
                .map_err(LibraryError::from)
                .unwrap(),
            [1e-7, f32::MAX, 0.5]
        );
        assert!(parse_vector("1,2").is_err());
    }

    #[test]
    fn tsqueries_quote_every_term() {
        let p = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            tsquery(&[p(&["cell"]), p(&["o'k", "a\\b"])]),
            r"'cell' | ('o''k' & 'a\\b')"
        );
    }

    /// A deterministic dense vector (xorshift), unlike any other.
    fn dense(seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..INDEXED_DIMS)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 20_001) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    /// The 384-dimension query's plan is the HNSW index once the planner is steered off
    /// the alternatives (as on a table large enough), and what comes through it ranks
    /// as the SQLite library ranks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_384_dimension_search_goes_through_the_hnsw_index_and_ranks_as_sqlite() {
        let Some(db) = learnflow_store_postgres::testing::TestDb::new() else {
            return;
        };
        let lib = PostgresLibrary::open(db.pool(2)).await.unwrap();
        let forced = PgPool::new(
            &db.url_with_settings(&[("enable_seqscan", "off"), ("enable_sort", "off")]),
            2,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = super::super::SqliteLibrary::open(&dir.path().join("lib.db")).unwrap();

        let text = DocumentText {
            title: "t".into(),
            pages: vec![PageText {
                number: 1,
                text: "x".into(),
                headings: vec![],
            }],
        };
        let chunks: Vec<Chunk> = (0..300)
            .map(|i| Chunk {
                id: format!("c{i}"),
                index: i,
                page: 1,
                text: format!("chunk {i}"),
                heading: None,
            })
            .collect();
        let vectors: Vec<(String, Vec<f32>)> = chunks
            .iter()
            .map(|c| (c.id.clone(), dense(c.index as u64)))
            .collect();
        let other: Vec<(String, Vec<f32>)> = chunks
            .iter()
            .map(|c| (c.id.clone(), dense(1_000 + c.index as u64)))
            .collect();
        let stores: [&dyn Library; 2] = [&lib, &sqlite];
        for store in stores {
            store
                .put_text("d", &text, &chunks, "markdown", &[])
                .await
                .unwrap();
            store.put_embeddings("d", "m", &vectors).await.unwrap();
            store
                .put_text("e", &text, &chunks, "markdown", &[])
                .await
                .unwrap();
            store.put_embeddings("e", "m", &other).await.unwrap();
        }

        let q = vector_text(&vectors[5].1);
        let plan: String = forced
            .tx(move |tx: &mut Tx<'_>| {
                tx.batch("ANALYZE chunks")?;
                let rows = tx.query_dynamic(&format!("EXPLAIN {VECTOR_NEAREST_384}"), &[&"d", &q, &40i64])?;
                Ok::<_, PgFailure>(
                    rows.iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })
            .await
            .unwrap();
        assert!(plan.contains("chunks_vector_384"), "{plan}");

        for seed in [5u64, 77, 5_000, 5_001, 299] {
            let qv = if seed < 300 {
                vectors[seed as usize].1.clone()
            } else {
                dense(seed)
            };
            for k in [3usize, 5, 12] {
                let (q, ph) = (qv.clone(), Vec::new());
                let (passages, through_index) = forced
                    .tx(move |tx: &mut Tx<'_>| {
                        let rows = search_rows(tx, "d", Some(&q), &ph, ranking::depth(k))?;
                        Ok::<_, Fail>((rank(&rows, Some(&q), &ph, k), rows.through_index))
                    })
                    .await
                    .map_err(LibraryError::from)
                    .unwrap();
                assert!(through_index, "seed {seed}, k {k}: the index's answer was used");
                let expected = sqlite.search("d", "", Some(&qv), k).await.unwrap();
                assert_eq!(passages, expected, "seed {seed}, k {k}");
                if seed < 300 {
                    assert_eq!(passages[0].chunk.id, format!("c{seed}"));
                }
            }
        }
    }
}
