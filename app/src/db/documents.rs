//! Uploaded source documents: metadata and extracted text, always read and written within one firm.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Database, DbError};
use crate::model::SourceDocument;

/// A stored document's metadata (the text is fetched separately; it can be large).
#[derive(Debug, Clone, Serialize)]
pub struct DocumentRecord {
    pub id: String,
    pub firm_id: String,
    pub filename: String,
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(skip)]
    pub storage_key: String,
    pub text_chars: i64,
    pub uploaded_by: String,
    pub created_at: String,
}

/// What an upload inserts.
pub struct NewDocument<'a> {
    pub id: &'a str,
    pub firm_id: &'a str,
    pub filename: &'a str,
    pub kind: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub storage_key: &'a str,
    pub extracted_text: &'a str,
    pub uploaded_by: &'a str,
    pub created_at: &'a str,
}

const COLUMNS: &str =
    "id, firm_id, filename, kind, content_type, size_bytes, sha256, storage_key, \
     CAST(LENGTH(extracted_text) AS BIGINT) AS text_chars, uploaded_by, created_at";

fn record_from_row(row: &AnyRow) -> Result<DocumentRecord, DbError> {
    Ok(DocumentRecord {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        filename: row.try_get("filename")?,
        kind: row.try_get("kind")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        storage_key: row.try_get("storage_key")?,
        text_chars: row.try_get("text_chars")?,
        uploaded_by: row.try_get("uploaded_by")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert_document(database: &Database, new: NewDocument<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO documents (id, firm_id, filename, kind, content_type, size_bytes, sha256, \
         storage_key, extracted_text, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new.id)
    .bind(new.firm_id)
    .bind(new.filename)
    .bind(new.kind)
    .bind(new.content_type)
    .bind(new.size_bytes)
    .bind(new.sha256)
    .bind(new.storage_key)
    .bind(new.extracted_text)
    .bind(new.uploaded_by)
    .bind(new.created_at)
    .execute(database.pool())
    .await?;
    Ok(())
}

pub async fn list_documents(
    database: &Database,
    firm_id: &str,
) -> Result<Vec<DocumentRecord>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM documents WHERE firm_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter().map(record_from_row).collect()
}

pub async fn get_document(
    database: &Database,
    firm_id: &str,
    document_id: &str,
) -> Result<Option<DocumentRecord>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM documents WHERE id = $1 AND firm_id = $2"
    ))
    .bind(document_id)
    .bind(firm_id)
    .fetch_optional(database.pool())
    .await?;
    row.as_ref().map(record_from_row).transpose()
}

/// The extracted text of one of the firm's documents.
pub async fn get_document_text(
    database: &Database,
    firm_id: &str,
    document_id: &str,
) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT extracted_text FROM documents WHERE id = $1 AND firm_id = $2")
        .bind(document_id)
        .bind(firm_id)
        .fetch_optional(database.pool())
        .await?;
    row.map(|row| row.try_get("extracted_text"))
        .transpose()
        .map_err(DbError::from)
}

/// How many characters of extracted text the matter's documents hold together, counted by the
/// database so a draft can refuse oversized sources before loading them.
pub async fn matter_source_text_chars(
    database: &Database,
    firm_id: &str,
    matter_id: &str,
) -> Result<i64, DbError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(LENGTH(d.extracted_text)), 0) AS BIGINT) AS chars \
         FROM matter_documents md JOIN documents d ON d.id = md.document_id \
         WHERE md.matter_id = $1 AND d.firm_id = $2",
    )
    .bind(matter_id)
    .bind(firm_id)
    .fetch_one(database.pool())
    .await?;
    Ok(row.try_get("chars")?)
}

/// The documents attached to a matter, in the order they were attached, with their text.
pub async fn matter_source_documents(
    database: &Database,
    firm_id: &str,
    matter_id: &str,
) -> Result<Vec<SourceDocument>, DbError> {
    let rows = sqlx::query(
        "SELECT d.id, d.filename, d.extracted_text FROM matter_documents md \
         JOIN documents d ON d.id = md.document_id \
         WHERE md.matter_id = $1 AND d.firm_id = $2 ORDER BY md.position",
    )
    .bind(matter_id)
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SourceDocument {
                id: row.try_get("id")?,
                filename: row.try_get("filename")?,
                text: row.try_get("extracted_text")?,
            })
        })
        .collect()
}

/// How many matters use the document.
pub async fn matters_using(database: &Database, document_id: &str) -> Result<i64, DbError> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS uses FROM matter_documents WHERE document_id = $1",
    )
    .bind(document_id)
    .fetch_one(database.pool())
    .await?;
    Ok(row.try_get("uses")?)
}

/// Deletes one of the firm's documents; true when a row was deleted.
pub async fn delete_document(
    database: &Database,
    firm_id: &str,
    document_id: &str,
) -> Result<bool, DbError> {
    let result = sqlx::query("DELETE FROM documents WHERE id = $1 AND firm_id = $2")
        .bind(document_id)
        .bind(firm_id)
        .execute(database.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}
