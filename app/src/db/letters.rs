//! Letters and their revisions. A letter's revisions are append-only: refining adds revision n+1
//! and never rewrites an earlier one.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, now_text, Database, DbError};
use crate::model::LetterDraft;

#[derive(Debug, Clone, Serialize)]
pub struct LetterRecord {
    pub id: String,
    pub firm_id: String,
    pub matter_id: String,
    pub current_revision: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionRecord {
    pub revision: i64,
    pub draft: LetterDraft,
    /// The refinement instruction that produced this revision; none for the first draft.
    pub instruction: Option<String>,
    pub engine: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub created_by: String,
    pub created_at: String,
}

/// What the drafting engine produced, ready to be stored as a revision.
pub struct NewRevision<'a> {
    pub draft: &'a LetterDraft,
    pub instruction: Option<&'a str>,
    pub engine: &'a str,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub created_by: &'a str,
}

const LETTER_COLUMNS: &str =
    "id, firm_id, matter_id, current_revision, created_by, created_at, updated_at";
const REVISION_COLUMNS: &str =
    "revision, draft_json, instruction, engine, input_tokens, output_tokens, created_by, created_at";

fn letter_from_row(row: &AnyRow) -> Result<LetterRecord, DbError> {
    Ok(LetterRecord {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        matter_id: row.try_get("matter_id")?,
        current_revision: row.try_get("current_revision")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn revision_from_row(row: &AnyRow) -> Result<RevisionRecord, DbError> {
    let draft_json: String = row.try_get("draft_json")?;
    let draft = serde_json::from_str(&draft_json)
        .map_err(|error| DbError::Corrupt(format!("letter draft does not parse: {error}")))?;
    Ok(RevisionRecord {
        revision: row.try_get("revision")?,
        draft,
        instruction: row.try_get("instruction")?,
        engine: row.try_get("engine")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn draft_json(draft: &LetterDraft) -> Result<String, DbError> {
    serde_json::to_string(draft)
        .map_err(|error| DbError::Corrupt(format!("letter draft does not serialise: {error}")))
}

async fn insert_revision(
    connection: &mut sqlx::AnyConnection,
    letter_id: &str,
    firm_id: &str,
    revision: i64,
    new: &NewRevision<'_>,
    created_at: &str,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO letter_revisions (letter_id, firm_id, {REVISION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(letter_id)
    .bind(firm_id)
    .bind(revision)
    .bind(draft_json(new.draft)?)
    .bind(new.instruction)
    .bind(new.engine)
    .bind(new.input_tokens)
    .bind(new.output_tokens)
    .bind(new.created_by)
    .bind(created_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Creates a letter for one of the firm's matters with its first revision.
pub async fn insert_letter(
    database: &Database,
    firm_id: &str,
    matter_id: &str,
    first: NewRevision<'_>,
) -> Result<LetterRecord, DbError> {
    let now = now_text();
    let letter = LetterRecord {
        id: new_id(),
        firm_id: firm_id.to_string(),
        matter_id: matter_id.to_string(),
        current_revision: 1,
        created_by: first.created_by.to_string(),
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    let mut transaction = database.pool().begin().await?;
    sqlx::query(&format!(
        "INSERT INTO letters ({LETTER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&letter.id)
    .bind(firm_id)
    .bind(matter_id)
    .bind(letter.current_revision)
    .bind(&letter.created_by)
    .bind(&now)
    .bind(&now)
    .execute(&mut *transaction)
    .await?;
    insert_revision(&mut transaction, &letter.id, firm_id, 1, &first, &now).await?;
    transaction.commit().await?;
    Ok(letter)
}

/// Appends revision `based_on + 1`. Fails with [`DbError::Conflict`] when another revision was
/// added since `based_on` was read; nothing is written then.
pub async fn append_revision(
    database: &Database,
    firm_id: &str,
    letter_id: &str,
    based_on: i64,
    new: NewRevision<'_>,
) -> Result<i64, DbError> {
    let now = now_text();
    let revision = based_on + 1;
    let mut transaction = database.pool().begin().await?;
    let claimed = sqlx::query(
        "UPDATE letters SET current_revision = $1, updated_at = $2 \
         WHERE id = $3 AND firm_id = $4 AND current_revision = $5",
    )
    .bind(revision)
    .bind(&now)
    .bind(letter_id)
    .bind(firm_id)
    .bind(based_on)
    .execute(&mut *transaction)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(DbError::Conflict);
    }
    insert_revision(&mut transaction, letter_id, firm_id, revision, &new, &now).await?;
    transaction.commit().await?;
    Ok(revision)
}

pub async fn get_letter(
    database: &Database,
    firm_id: &str,
    letter_id: &str,
) -> Result<Option<LetterRecord>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {LETTER_COLUMNS} FROM letters WHERE id = $1 AND firm_id = $2"
    ))
    .bind(letter_id)
    .bind(firm_id)
    .fetch_optional(database.pool())
    .await?;
    row.as_ref().map(letter_from_row).transpose()
}

/// The firm's letters, newest first, optionally only those of one matter.
pub async fn list_letters(
    database: &Database,
    firm_id: &str,
    matter_id: Option<&str>,
) -> Result<Vec<LetterRecord>, DbError> {
    let rows = match matter_id {
        Some(matter_id) => {
            sqlx::query(&format!(
                "SELECT {LETTER_COLUMNS} FROM letters WHERE firm_id = $1 AND matter_id = $2 \
             ORDER BY created_at DESC, id"
            ))
            .bind(firm_id)
            .bind(matter_id)
            .fetch_all(database.pool())
            .await?
        }
        None => {
            sqlx::query(&format!(
            "SELECT {LETTER_COLUMNS} FROM letters WHERE firm_id = $1 ORDER BY created_at DESC, id"
        ))
            .bind(firm_id)
            .fetch_all(database.pool())
            .await?
        }
    };
    rows.iter().map(letter_from_row).collect()
}

pub async fn get_revision(
    database: &Database,
    firm_id: &str,
    letter_id: &str,
    revision: i64,
) -> Result<Option<RevisionRecord>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {REVISION_COLUMNS} FROM letter_revisions \
         WHERE letter_id = $1 AND firm_id = $2 AND revision = $3"
    ))
    .bind(letter_id)
    .bind(firm_id)
    .bind(revision)
    .fetch_optional(database.pool())
    .await?;
    row.as_ref().map(revision_from_row).transpose()
}

/// Every revision of one of the firm's letters, oldest first.
pub async fn list_revisions(
    database: &Database,
    firm_id: &str,
    letter_id: &str,
) -> Result<Vec<RevisionRecord>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {REVISION_COLUMNS} FROM letter_revisions \
         WHERE letter_id = $1 AND firm_id = $2 ORDER BY revision"
    ))
    .bind(letter_id)
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter().map(revision_from_row).collect()
}
