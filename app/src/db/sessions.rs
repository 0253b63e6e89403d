//! Access-token revocation, shared by every Steno process on the database: tokens revoked one by
//! one (logout) and per-user token generations (a password change refuses every older token).

use sqlx::Row;

use super::firms::User;
use super::{Database, DbError};

/// A token's user as the database sees it when the token is presented.
#[derive(Debug, Clone)]
pub struct SessionCheck {
    pub user: User,
    /// The user's current token generation; a token of another generation is refused.
    pub generation: i64,
    /// True when this token id was revoked.
    pub revoked: bool,
}

/// Looks up the user of a token (within its firm), the user's token generation and whether the
/// token id was revoked, in one query.
pub async fn check_session(
    database: &Database,
    firm_id: &str,
    user_id: &str,
    token_id: Option<&str>,
) -> Result<Option<SessionCheck>, DbError> {
    let row = sqlx::query(
        "SELECT u.id, u.firm_id, u.email, u.name, u.role, u.created_at, \
         COALESCE((SELECT g.generation FROM token_generations g WHERE g.user_id = u.id), 0) AS generation, \
         (SELECT COUNT(*) FROM revoked_tokens r WHERE r.token_id = $3) AS revocations \
         FROM users u WHERE u.id = $1 AND u.firm_id = $2",
    )
    .bind(user_id)
    .bind(firm_id)
    .bind(token_id.unwrap_or_default())
    .fetch_optional(database.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let role: String = row.try_get("role")?;
    let user = User {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: super::firms::Role::parse(&role)
            .ok_or_else(|| DbError::Corrupt(format!("unknown role {role:?}")))?,
        created_at: row.try_get("created_at")?,
    };
    Ok(Some(SessionCheck {
        user,
        generation: row.try_get("generation")?,
        revoked: token_id.is_some() && row.try_get::<i64, _>("revocations")? > 0,
    }))
}

/// A user's current token generation (0 when never moved on).
pub async fn token_generation(database: &Database, user_id: &str) -> Result<i64, DbError> {
    let row = sqlx::query("SELECT generation FROM token_generations WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(database.pool())
        .await?;
    match row {
        Some(row) => Ok(row.try_get("generation")?),
        None => Ok(0),
    }
}

/// Revokes one token until it expires, and forgets revocations of tokens that expired by `now`.
pub async fn revoke_token(
    database: &Database,
    token_id: &str,
    user_id: &str,
    expires_at: &str,
    now: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO revoked_tokens (token_id, user_id, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(token_id)
    .bind(user_id)
    .bind(expires_at)
    .execute(database.pool())
    .await?;
    sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(database.pool())
        .await?;
    Ok(())
}

/// Moves the user's token generation on (every token issued before is refused from now on) and
/// returns the new generation.
pub async fn advance_token_generation(database: &Database, user_id: &str) -> Result<i64, DbError> {
    let mut transaction = database.pool().begin().await?;
    let generation = advance_generation_in(&mut transaction, user_id).await?;
    transaction.commit().await?;
    Ok(generation)
}

async fn advance_generation_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO token_generations (user_id, generation) VALUES ($1, 1) \
         ON CONFLICT (user_id) DO UPDATE SET generation = token_generations.generation + 1",
    )
    .bind(user_id)
    .execute(&mut **transaction)
    .await?;
    let row = sqlx::query("SELECT generation FROM token_generations WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut **transaction)
        .await?;
    Ok(row.try_get("generation")?)
}

/// Replaces a user's password hash and moves their token generation on, in one transaction, only
/// if the stored hash is still `expected_hash` (so two changes at once cannot both win). Returns
/// the new generation, or `DbError::Conflict` when the password changed meanwhile.
pub async fn change_password(
    database: &Database,
    firm_id: &str,
    user_id: &str,
    expected_hash: &str,
    new_hash: &str,
) -> Result<i64, DbError> {
    let mut transaction = database.pool().begin().await?;
    let updated = sqlx::query(
        "UPDATE users SET password_hash = $1 WHERE id = $2 AND firm_id = $3 AND password_hash = $4",
    )
    .bind(new_hash)
    .bind(user_id)
    .bind(firm_id)
    .bind(expected_hash)
    .execute(&mut *transaction)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(DbError::Conflict);
    }
    let generation = advance_generation_in(&mut transaction, user_id).await?;
    transaction.commit().await?;
    Ok(generation)
}
