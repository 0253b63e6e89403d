//! Matters (one claim each) and the documents attached to them, always scoped to one firm.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, now_text, Database, DbError};
use crate::model::MatterFacts;

#[derive(Debug, Clone, Serialize)]
pub struct MatterRecord {
    pub id: String,
    pub firm_id: String,
    pub title: String,
    pub facts: MatterFacts,
    pub document_ids: Vec<String>,
    pub created_by: String,
    pub created_at: String,
}

fn matter_from_row(row: &AnyRow) -> Result<MatterRecord, DbError> {
    let facts_json: String = row.try_get("facts_json")?;
    let facts = serde_json::from_str(&facts_json)
        .map_err(|error| DbError::Corrupt(format!("matter facts do not parse: {error}")))?;
    Ok(MatterRecord {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        title: row.try_get("title")?,
        facts,
        document_ids: Vec::new(),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Inserts a matter with its documents (which the caller has checked belong to the firm).
pub async fn insert_matter(
    database: &Database,
    firm_id: &str,
    title: &str,
    facts: &MatterFacts,
    document_ids: &[String],
    created_by: &str,
) -> Result<MatterRecord, DbError> {
    let facts_json = serde_json::to_string(facts)
        .map_err(|error| DbError::Corrupt(format!("matter facts do not serialise: {error}")))?;
    let record = MatterRecord {
        id: new_id(),
        firm_id: firm_id.to_string(),
        title: title.to_string(),
        facts: facts.clone(),
        document_ids: document_ids.to_vec(),
        created_by: created_by.to_string(),
        created_at: now_text(),
    };
    let mut transaction = database.pool().begin().await?;
    sqlx::query(
        "INSERT INTO matters (id, firm_id, title, facts_json, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&record.id)
    .bind(firm_id)
    .bind(title)
    .bind(&facts_json)
    .bind(created_by)
    .bind(&record.created_at)
    .execute(&mut *transaction)
    .await?;
    for (position, document_id) in document_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO matter_documents (matter_id, document_id, position) VALUES ($1, $2, $3)",
        )
        .bind(&record.id)
        .bind(document_id)
        .bind(position as i64)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(record)
}

pub async fn list_matters(
    database: &Database,
    firm_id: &str,
) -> Result<Vec<MatterRecord>, DbError> {
    let rows = sqlx::query(
        "SELECT id, firm_id, title, facts_json, created_by, created_at FROM matters \
         WHERE firm_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    let mut matters = rows
        .iter()
        .map(matter_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for matter in &mut matters {
        matter.document_ids = document_ids_of(database, &matter.id).await?;
    }
    Ok(matters)
}

pub async fn get_matter(
    database: &Database,
    firm_id: &str,
    matter_id: &str,
) -> Result<Option<MatterRecord>, DbError> {
    let row = sqlx::query(
        "SELECT id, firm_id, title, facts_json, created_by, created_at FROM matters \
         WHERE id = $1 AND firm_id = $2",
    )
    .bind(matter_id)
    .bind(firm_id)
    .fetch_optional(database.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut matter = matter_from_row(&row)?;
    matter.document_ids = document_ids_of(database, &matter.id).await?;
    Ok(Some(matter))
}

async fn document_ids_of(database: &Database, matter_id: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT document_id FROM matter_documents WHERE matter_id = $1 ORDER BY position",
    )
    .bind(matter_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter()
        .map(|row| row.try_get("document_id").map_err(DbError::from))
        .collect()
}
