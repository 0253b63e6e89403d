//! Firms, their users, invitations and instance settings. Every read of a user or firm is scoped by
//! firm id except the two entry points that must find an account first (login, invitation accept).
//! An email is unique within a firm; several firms may each have a user with the same email.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, now_text, Database, DbError};

/// What a user may do inside their firm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the firm profile, letterhead and invitations, plus everything a member does.
    Admin,
    /// Uploads documents, creates matters, drafts, refines and exports letters.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Firm {
    pub id: String,
    pub name: String,
    pub address: String,
    pub has_logo: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub firm_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    pub id: String,
    pub firm_id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub accepted_at: Option<String>,
}

/// Why an invitation could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptInvitationError {
    #[error("the invitation token is unknown, already used or expired; ask your firm admin for a new one")]
    InvalidToken,
    #[error("someone in this firm already uses the email {0}; ask your firm admin")]
    EmailTaken(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

const FIRM_COLUMNS: &str =
    "id, name, address, CASE WHEN logo IS NULL THEN 0 ELSE 1 END AS has_logo, created_at";
const USER_COLUMNS: &str = "id, firm_id, email, name, role, created_at";

fn firm_from_row(row: &AnyRow) -> Result<Firm, DbError> {
    Ok(Firm {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        has_logo: row.try_get::<i64, _>("has_logo")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, DbError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| DbError::Corrupt(format!("unknown role {role:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

fn invitation_from_row(row: &AnyRow) -> Result<Invitation, DbError> {
    let role: String = row.try_get("role")?;
    Ok(Invitation {
        id: row.try_get("id")?,
        firm_id: row.try_get("firm_id")?,
        email: row.try_get("email")?,
        role: Role::parse(&role)
            .ok_or_else(|| DbError::Corrupt(format!("unknown role {role:?}")))?,
        invited_by: row.try_get("invited_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        accepted_at: row.try_get("accepted_at")?,
    })
}

/// True when the error is a unique-constraint violation (an email already taken, say).
pub fn is_unique_violation(error: &DbError) -> bool {
    match error {
        DbError::Query(sqlx::Error::Database(database_error)) => {
            database_error.is_unique_violation()
        }
        _ => false,
    }
}

/// Creates a firm and its first admin in one transaction; nothing is written on error. The firm
/// is new, so the admin's email cannot collide with another user of it.
pub async fn create_firm_with_admin(
    database: &Database,
    firm_name: &str,
    firm_address: &str,
    admin_email: &str,
    admin_name: &str,
    password_hash: &str,
) -> Result<(Firm, User), DbError> {
    let firm_id = new_id();
    let user_id = new_id();
    let now = now_text();
    let mut transaction = database.pool().begin().await?;
    sqlx::query("INSERT INTO firms (id, name, address, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&firm_id)
        .bind(firm_name)
        .bind(firm_address)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "INSERT INTO users (id, firm_id, email, name, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&user_id)
    .bind(&firm_id)
    .bind(admin_email)
    .bind(admin_name)
    .bind(password_hash)
    .bind(Role::Admin.as_str())
    .bind(&now)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    let firm = Firm {
        id: firm_id.clone(),
        name: firm_name.to_string(),
        address: firm_address.to_string(),
        has_logo: false,
        created_at: now.clone(),
    };
    let user = User {
        id: user_id,
        firm_id,
        email: admin_email.to_string(),
        name: admin_name.to_string(),
        role: Role::Admin,
        created_at: now,
    };
    Ok((firm, user))
}

/// The accounts a login with `email` may mean, across firms, oldest first, at most `limit`,
/// each with its password hash (login only).
pub async fn find_login_candidates(
    database: &Database,
    email: &str,
    limit: usize,
) -> Result<Vec<(User, String)>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1 \
         ORDER BY created_at, id LIMIT $2"
    ))
    .bind(email)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(database.pool())
    .await?;
    rows.iter()
        .map(|row| Ok((user_from_row(row)?, row.try_get("password_hash")?)))
        .collect()
}

/// The user of `firm_id` with `email`, if any.
pub async fn find_user_by_email(
    database: &Database,
    firm_id: &str,
    email: &str,
) -> Result<Option<User>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE firm_id = $1 AND email = $2"
    ))
    .bind(firm_id)
    .bind(email)
    .fetch_optional(database.pool())
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// A user's password hash, within their firm (password change).
pub async fn password_hash(
    database: &Database,
    firm_id: &str,
    user_id: &str,
) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1 AND firm_id = $2")
        .bind(user_id)
        .bind(firm_id)
        .fetch_optional(database.pool())
        .await?;
    row.map(|row| row.try_get("password_hash").map_err(DbError::from))
        .transpose()
}

/// An invitation that can still be accepted at `now`, with its firm (read before accepting, so
/// the new password can be checked against the email and the firm's name).
pub async fn open_invitation(
    database: &Database,
    token_hash: &str,
    now: &str,
) -> Result<Option<(Invitation, Firm)>, DbError> {
    let row = sqlx::query(
        "SELECT id, firm_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(database.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let invitation = invitation_from_row(&row)?;
    let firm = get_firm(database, &invitation.firm_id)
        .await?
        .ok_or_else(|| {
            DbError::Corrupt(format!(
                "firm {} of an invitation is missing",
                invitation.firm_id
            ))
        })?;
    Ok(Some((invitation, firm)))
}

/// A user of the given firm.
pub async fn find_user(
    database: &Database,
    firm_id: &str,
    user_id: &str,
) -> Result<Option<User>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND firm_id = $2"
    ))
    .bind(user_id)
    .bind(firm_id)
    .fetch_optional(database.pool())
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn list_users(database: &Database, firm_id: &str) -> Result<Vec<User>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE firm_id = $1 ORDER BY created_at, email"
    ))
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter().map(user_from_row).collect()
}

pub async fn get_firm(database: &Database, firm_id: &str) -> Result<Option<Firm>, DbError> {
    let row = sqlx::query(&format!("SELECT {FIRM_COLUMNS} FROM firms WHERE id = $1"))
        .bind(firm_id)
        .fetch_optional(database.pool())
        .await?;
    row.as_ref().map(firm_from_row).transpose()
}

pub async fn update_firm(
    database: &Database,
    firm_id: &str,
    name: &str,
    address: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE firms SET name = $1, address = $2 WHERE id = $3")
        .bind(name)
        .bind(address)
        .bind(firm_id)
        .execute(database.pool())
        .await?;
    Ok(())
}

pub async fn set_logo(
    database: &Database,
    firm_id: &str,
    logo: &[u8],
    content_type: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE firms SET logo = $1, logo_content_type = $2 WHERE id = $3")
        .bind(logo)
        .bind(content_type)
        .bind(firm_id)
        .execute(database.pool())
        .await?;
    Ok(())
}

/// The firm's logo bytes and content type, when one was uploaded.
pub async fn get_logo(
    database: &Database,
    firm_id: &str,
) -> Result<Option<(Vec<u8>, String)>, DbError> {
    let row =
        sqlx::query("SELECT logo, logo_content_type FROM firms WHERE id = $1 AND logo IS NOT NULL")
            .bind(firm_id)
            .fetch_optional(database.pool())
            .await?;
    match row {
        Some(row) => Ok(Some((
            row.try_get("logo")?,
            row.try_get("logo_content_type")?,
        ))),
        None => Ok(None),
    }
}

pub struct NewInvitation<'a> {
    pub firm_id: &'a str,
    pub email: &'a str,
    pub role: Role,
    pub token_hash: &'a str,
    pub invited_by: &'a str,
    pub expires_at: &'a str,
}

pub async fn create_invitation(
    database: &Database,
    new: NewInvitation<'_>,
) -> Result<Invitation, DbError> {
    let invitation = Invitation {
        id: new_id(),
        firm_id: new.firm_id.to_string(),
        email: new.email.to_string(),
        role: new.role,
        invited_by: new.invited_by.to_string(),
        created_at: now_text(),
        expires_at: new.expires_at.to_string(),
        accepted_at: None,
    };
    sqlx::query(
        "INSERT INTO invitations (id, firm_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&invitation.id)
    .bind(&invitation.firm_id)
    .bind(&invitation.email)
    .bind(invitation.role.as_str())
    .bind(new.token_hash)
    .bind(&invitation.invited_by)
    .bind(&invitation.created_at)
    .bind(&invitation.expires_at)
    .execute(database.pool())
    .await?;
    Ok(invitation)
}

pub async fn list_invitations(
    database: &Database,
    firm_id: &str,
) -> Result<Vec<Invitation>, DbError> {
    let rows = sqlx::query(
        "SELECT id, firm_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE firm_id = $1 ORDER BY created_at",
    )
    .bind(firm_id)
    .fetch_all(database.pool())
    .await?;
    rows.iter().map(invitation_from_row).collect()
}

/// Marks the invitation used and creates its user, in one transaction; nothing changes on error.
pub async fn accept_invitation(
    database: &Database,
    token_hash: &str,
    name: &str,
    password_hash: &str,
) -> Result<(Firm, User), AcceptInvitationError> {
    let now = now_text();
    let mut transaction = database.pool().begin().await.map_err(DbError::from)?;
    // The write comes first so SQLite takes its write lock before reading.
    let claimed = sqlx::query(
        "UPDATE invitations SET accepted_at = $1 \
         WHERE token_hash = $2 AND accepted_at IS NULL AND expires_at > $1",
    )
    .bind(&now)
    .bind(token_hash)
    .execute(&mut *transaction)
    .await
    .map_err(DbError::from)?;
    if claimed.rows_affected() != 1 {
        return Err(AcceptInvitationError::InvalidToken);
    }
    let row = sqlx::query(
        "SELECT id, firm_id, email, role, invited_by, created_at, expires_at, accepted_at \
         FROM invitations WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_one(&mut *transaction)
    .await
    .map_err(DbError::from)?;
    let invitation = invitation_from_row(&row)?;
    let user = User {
        id: new_id(),
        firm_id: invitation.firm_id.clone(),
        email: invitation.email.clone(),
        name: name.to_string(),
        role: invitation.role,
        created_at: now.clone(),
    };
    let inserted = sqlx::query(
        "INSERT INTO users (id, firm_id, email, name, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&user.id)
    .bind(&user.firm_id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(password_hash)
    .bind(user.role.as_str())
    .bind(&now)
    .execute(&mut *transaction)
    .await
    .map_err(DbError::from);
    if let Err(error) = inserted {
        return Err(if is_unique_violation(&error) {
            AcceptInvitationError::EmailTaken(user.email)
        } else {
            error.into()
        });
    }
    transaction.commit().await.map_err(DbError::from)?;
    let firm = get_firm(database, &user.firm_id).await?.ok_or_else(|| {
        DbError::Corrupt(format!("firm {} of an invitation is missing", user.firm_id))
    })?;
    Ok((firm, user))
}

/// Returns the stored value of an instance setting, storing `proposed` first when there is none.
/// Two processes racing here agree on whichever value was stored first.
pub async fn setting_or_insert(
    database: &Database,
    key: &str,
    proposed: &str,
) -> Result<String, DbError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(proposed)
        .execute(database.pool())
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_one(database.pool())
        .await?;
    Ok(row.try_get("value")?)
}
