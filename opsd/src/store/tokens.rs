//! API tokens in the store, known only by the SHA-256 (lowercase hex) of the secret, each with
//! a role.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::Row;

use super::{narrow, parse_time, time_text, violation, Store, StoreError};

/// What a token may do: `viewer` reads, `operator` also acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    Viewer,
    Operator,
}

impl TokenRole {
    /// The role as stored and as written in configuration: `viewer` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Viewer => "viewer",
            TokenRole::Operator => "operator",
        }
    }
}

impl fmt::Display for TokenRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A role name that is neither `viewer` nor `operator`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token role {0:?}; use viewer or operator")]
pub struct UnknownTokenRole(pub String);

impl FromStr for TokenRole {
    type Err = UnknownTokenRole;

    fn from_str(text: &str) -> Result<TokenRole, UnknownTokenRole> {
        match text {
            "viewer" => Ok(TokenRole::Viewer),
            "operator" => Ok(TokenRole::Operator),
            other => Err(UnknownTokenRole(other.to_string())),
        }
    }
}

/// A registered API token (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub token_hash: String,
    pub name: String,
    pub role: TokenRole,
    pub created_at: DateTime<Utc>,
}

/// Whether `text` has the form of a SHA-256 digest in lowercase hex.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    /// Registers a token by the SHA-256 hex of its secret.
    pub async fn insert_token(
        &self,
        token_hash: &str,
        name: &str,
        role: TokenRole,
    ) -> Result<(), StoreError> {
        if !is_sha256_hex(token_hash) {
            return Err(StoreError::InvalidTokenHash);
        }
        let mut transaction = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(name)
        .bind(role.as_str())
        .bind(time_text(Utc::now()))
        .execute(&mut *transaction)
        .await;
        transaction.commit().await?;
        match inserted {
            Ok(_) => {
                tracing::info!(
                    token_name = name,
                    role = role.as_str(),
                    "api token registered"
                );
                Ok(())
            }
            Err(error) if violation(&error) == Some(ErrorKind::UniqueViolation) => {
                Err(StoreError::TokenExists)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The token whose secret hashes to `token_hash`, if registered.
    pub async fn find_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        if !is_sha256_hex(token_hash) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT token_hash, name, role, created_at FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Every registered token's name, role and creation time (never the secret or its hash).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, name, role, created_at FROM api_tokens ORDER BY created_at, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Removes every token held by `name`; returns how many were removed. Requests, dashboard
    /// sessions and live feeds made with them stop working (the API looks tokens up on each
    /// request; a live feed re-checks its token periodically).
    pub async fn revoke_token(&self, name: &str) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        if removed > 0 {
            tracing::info!(token_name = name, "api token revoked");
        }
        Ok(removed)
    }

    /// How many tokens are registered (none means the API is not yet set up).
    pub async fn count_tokens(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS tokens FROM api_tokens")
            .fetch_one(self.pool())
            .await?;
        narrow(row.try_get("tokens")?, "api_tokens count")
    }
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiToken {
        token_hash: row.try_get("token_hash")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|error: UnknownTokenRole| StoreError::Corrupt {
                what: "api_tokens.role".to_string(),
                detail: error.to_string(),
            })?,
        created_at: parse_time(
            &row.try_get::<String, _>("created_at")?,
            "api_tokens.created_at",
        )?,
    })
}
