//! Account operations shared by the JSON API and the web UI: register a firm, log in (throttled
//! per client and per account), authenticate and revoke access tokens, change a password,
//! invite a colleague and accept an invitation.
//!
//! An email is unique within a firm only, so nothing here ever answers differently because
//! another firm uses an email: registration always creates a new firm, invitations check only
//! the inviting firm, and a login tries the (few, oldest) accounts with that email, verifying a
//! decoy hash when there are none.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{self, Claims};
use crate::client_identity::ClientContext;
use crate::db::firms::{self, AcceptInvitationError, Firm, Invitation, NewInvitation, Role, User};
use crate::db::{login_failures, new_id, sessions, time_text, DbError};
use crate::error::AppError;
use crate::password_hashing::HashingError;
use crate::password_policy::{self, PasswordContext, MAX_PASSWORD_CHARS};
use crate::service::{optional, required, CurrentUser};
use crate::state::AppState;
use crate::throttle::{self, Verdict, WindowPolicy};

const MAX_NAME_CHARS: usize = 200;
const INVITATION_DAYS: i64 = 7;
/// The most accounts one login checks the password against (the oldest with that email).
pub const MAX_ACCOUNTS_TRIED_PER_LOGIN: usize = 5;
const INVALID_LOGIN: &str = "invalid email or password";

/// What a successful login or registration returns.
#[derive(Debug, Serialize)]
pub struct Session {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_at: String,
    pub user: User,
    pub firm: Firm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFirm {
    pub firm_name: String,
    #[serde(default)]
    pub firm_address: String,
    pub admin_name: String,
    pub admin_email: String,
    pub admin_password: String,
}

fn normalise_email(field: &str, email: &str) -> Result<String, AppError> {
    let email = email.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err(AppError::Unprocessable(format!(
            "{field} {email:?} is not a valid email address"
        )))
    }
}

/// Applies the password policy to a new password; the message names the field.
fn check_new_password(
    field: &str,
    password: &str,
    context: PasswordContext<'_>,
) -> Result<(), AppError> {
    password_policy::check_password(password, context)
        .map_err(|violation| AppError::Unprocessable(format!("{field} {violation}")))
}

fn hashing_failed(error: HashingError) -> AppError {
    match error {
        HashingError::Busy => AppError::TooManyRequests {
            message: error.to_string(),
            retry_after_secs: 1,
        },
        HashingError::Failed(_) => AppError::Internal(error.to_string()),
    }
}

/// Hashes a new password in the bounded hashing pool.
async fn hash_new_password(state: &AppState, password: String) -> Result<String, AppError> {
    state
        .password_hasher()
        .run(move || auth::hash_password(&password))
        .await
        .map_err(hashing_failed)?
        .map_err(|error| AppError::Internal(error.to_string()))
}

fn too_many(message: &str, retry_after: Duration) -> AppError {
    let seconds = retry_after.as_secs().max(1);
    AppError::TooManyRequests {
        message: format!("{message}; try again in {seconds} seconds"),
        retry_after_secs: seconds,
    }
}

/// Counts one password attempt by the client, or refuses it when the client is over its limit.
fn admit_client(state: &AppState, client: &ClientContext) -> Result<(), AppError> {
    let key = client.throttle_key();
    match state.client_limiter().attempt(&key, state.clock().now()) {
        Verdict::Allowed => Ok(()),
        Verdict::Limited { retry_after } => {
            tracing::warn!(client = %key, "password attempts throttled for a client");
            Err(too_many(
                "too many password attempts from your address",
                retry_after,
            ))
        }
    }
}

fn account_policy(state: &AppState) -> WindowPolicy {
    let security = &state.settings().account_security;
    WindowPolicy {
        max_events: security.account_max_failures,
        window: security.account_window,
    }
}

/// The key failed logins are counted under: the hash of the normalised email, so unknown emails
/// are throttled exactly like known ones and the table never holds addresses.
fn account_key(email: &str) -> String {
    auth::sha256_hex(email.as_bytes())
}

fn window_floor(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    let window =
        chrono::Duration::from_std(account_policy(state).window).unwrap_or(chrono::Duration::MAX);
    let now = state.clock().now();
    now.checked_sub_signed(window).unwrap_or(now)
}

/// Refuses a password check for an account that failed too often in the current window.
async fn admit_account(state: &AppState, key: &str) -> Result<(), AppError> {
    let count = login_failures::failures(state.database(), key).await?;
    match throttle::judge(count.as_ref(), state.clock().now(), account_policy(state)) {
        Verdict::Allowed => Ok(()),
        Verdict::Limited { retry_after } => Err(too_many(
            "too many failed password attempts for this email",
            retry_after,
        )),
    }
}

async fn record_account_failure(state: &AppState, key: &str) -> Result<(), AppError> {
    login_failures::record_failure(
        state.database(),
        key,
        state.clock().now(),
        window_floor(state),
    )
    .await?;
    Ok(())
}

fn issue_session(state: &AppState, user: User, firm: Firm, generation: i64) -> Session {
    let now = state.clock().now();
    let ttl = chrono::Duration::from_std(state.settings().token_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(8));
    let expires = now + ttl;
    let claims = Claims {
        sub: user.id.clone(),
        firm: user.firm_id.clone(),
        iat: now.timestamp(),
        exp: expires.timestamp(),
        jti: Some(new_id()),
        generation: Some(generation),
    };
    Session {
        access_token: state.signer().issue(&claims),
        token_type: "Bearer",
        expires_at: time_text(expires),
        user,
        firm,
    }
}

/// Registers a new firm with its first admin and logs the admin in. Any email may register a
/// new firm, whether or not other firms use it, so the answer never tells which emails exist.
pub async fn register_firm(
    state: &AppState,
    client: &ClientContext,
    input: RegisterFirm,
) -> Result<Session, AppError> {
    let firm_name = required("firm_name", &input.firm_name, MAX_NAME_CHARS)?;
    let firm_address = optional("firm_address", &input.firm_address, 1000)?;
    let admin_name = required("admin_name", &input.admin_name, MAX_NAME_CHARS)?;
    let admin_email = normalise_email("admin_email", &input.admin_email)?;
    check_new_password(
        "admin_password",
        &input.admin_password,
        PasswordContext {
            email: Some(&admin_email),
            firm_name: Some(&firm_name),
        },
    )?;
    admit_client(state, client)?;
    let password_hash = hash_new_password(state, input.admin_password).await?;
    let (firm, user) = firms::create_firm_with_admin(
        state.database(),
        &firm_name,
        &firm_address,
        &admin_email,
        &admin_name,
        &password_hash,
    )
    .await?;
    tracing::info!(firm_id = %firm.id, user_id = %user.id, "firm registered");
    Ok(issue_session(state, user, firm, 0))
}

/// Logs a user in with email and password. Throttled per client address and per email (the
/// email's lockout also refuses the right password until its window ends).
pub async fn login(
    state: &AppState,
    client: &ClientContext,
    email: &str,
    password: &str,
) -> Result<Session, AppError> {
    let email = email.trim().to_ascii_lowercase();
    admit_client(state, client)?;
    let key = account_key(&email);
    admit_account(state, &key).await?;
    if password.chars().count() > MAX_PASSWORD_CHARS {
        record_account_failure(state, &key).await?;
        return Err(AppError::Unauthorized(INVALID_LOGIN.into()));
    }
    let candidates =
        firms::find_login_candidates(state.database(), &email, MAX_ACCOUNTS_TRIED_PER_LOGIN)
            .await?;
    let hashes: Vec<String> = candidates.iter().map(|(_, hash)| hash.clone()).collect();
    let password = password.to_string();
    // Every candidate is checked (no early exit) and a decoy when there is none, so the time
    // taken depends only on how many accounts share the email.
    let matches: Vec<bool> = state
        .password_hasher()
        .run(move || {
            if hashes.is_empty() {
                auth::verify_password(&password, auth::decoy_hash());
                return Vec::new();
            }
            hashes
                .iter()
                .map(|hash| auth::verify_password(&password, hash))
                .collect()
        })
        .await
        .map_err(hashing_failed)?;
    let matched = candidates
        .into_iter()
        .zip(matches)
        .find_map(|((user, _), matches)| matches.then_some(user));
    let Some(user) = matched else {
        record_account_failure(state, &key).await?;
        tracing::info!(client = %client.throttle_key(), "login refused");
        return Err(AppError::Unauthorized(INVALID_LOGIN.into()));
    };
    login_failures::clear(state.database(), &key, window_floor(state)).await?;
    let firm = firms::get_firm(state.database(), &user.firm_id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("firm of user {} is missing", user.id)))?;
    let generation = sessions::token_generation(state.database(), &user.id).await?;
    Ok(issue_session(state, user, firm, generation))
}

/// Resolves an access token to its user: signature and expiry, the user still in the token's
/// firm, the token not revoked (logout) and of the user's current generation (password change).
pub async fn authenticate(state: &AppState, token: &str) -> Result<CurrentUser, AppError> {
    let claims = state
        .signer()
        .verify(token, state.clock().now().timestamp())
        .map_err(|error| AppError::Unauthorized(error.to_string()))?;
    let check = sessions::check_session(
        state.database(),
        &claims.firm,
        &claims.sub,
        claims.jti.as_deref(),
    )
    .await?
    .ok_or_else(|| {
        AppError::Unauthorized("the user of this access token no longer exists".into())
    })?;
    if check.revoked {
        return Err(AppError::Unauthorized(
            "this access token was revoked (logged out); log in again".into(),
        ));
    }
    if claims.generation.unwrap_or(0) != check.generation {
        return Err(AppError::Unauthorized(
            "this access token was revoked by a password change; log in again".into(),
        ));
    }
    Ok(CurrentUser {
        user: check.user,
        token: claims,
    })
}

/// Revokes the caller's access token for every Steno process on the database. A token without
/// an id (issued by an older release) can only be revoked with all of the user's tokens.
pub async fn logout(state: &AppState, caller: &CurrentUser) -> Result<(), AppError> {
    match caller.token.jti.as_deref() {
        Some(token_id) => {
            let expires_at = chrono::DateTime::from_timestamp(caller.token.exp, 0)
                .map(time_text)
                .unwrap_or_else(|| time_text(state.clock().now()));
            sessions::revoke_token(
                state.database(),
                token_id,
                &caller.user.id,
                &expires_at,
                &time_text(state.clock().now()),
            )
            .await?;
        }
        None => {
            sessions::advance_token_generation(state.database(), &caller.user.id).await?;
        }
    }
    tracing::info!(user_id = %caller.user.id, "logged out; token revoked");
    Ok(())
}

/// Changes the caller's password after checking the current one (throttled like a login), then
/// revokes every token the caller holds and returns a fresh session.
pub async fn change_password(
    state: &AppState,
    client: &ClientContext,
    caller: &CurrentUser,
    current_password: &str,
    new_password: &str,
) -> Result<Session, AppError> {
    let firm = firms::get_firm(state.database(), caller.firm_id())
        .await?
        .ok_or_else(|| AppError::Internal(format!("firm {} is missing", caller.firm_id())))?;
    check_new_password(
        "new_password",
        new_password,
        PasswordContext {
            email: Some(&caller.user.email),
            firm_name: Some(&firm.name),
        },
    )?;
    if new_password == current_password {
        return Err(AppError::Unprocessable(
            "new_password must differ from current_password".into(),
        ));
    }
    admit_client(state, client)?;
    let key = account_key(&caller.user.email);
    admit_account(state, &key).await?;
    let stored_hash = firms::password_hash(state.database(), caller.firm_id(), &caller.user.id)
        .await?
        .ok_or_else(|| {
            AppError::Unauthorized("the user of this access token no longer exists".into())
        })?;
    let current = current_password.to_string();
    let proposed = new_password.to_string();
    let checked_hash = stored_hash.clone();
    let (current_matches, new_hash) = state
        .password_hasher()
        .run(move || {
            if current.chars().count() > MAX_PASSWORD_CHARS
                || !auth::verify_password(&current, &checked_hash)
            {
                return (false, None);
            }
            (true, Some(auth::hash_password(&proposed)))
        })
        .await
        .map_err(hashing_failed)?;
    let new_hash = match (current_matches, new_hash) {
        (true, Some(hash)) => hash.map_err(|error| AppError::Internal(error.to_string()))?,
        _ => {
            record_account_failure(state, &key).await?;
            return Err(AppError::Forbidden(
                "current_password is not your current password".into(),
            ));
        }
    };
    let generation = match sessions::change_password(
        state.database(),
        caller.firm_id(),
        &caller.user.id,
        &stored_hash,
        &new_hash,
    )
    .await
    {
        Ok(generation) => generation,
        Err(DbError::Conflict) => {
            return Err(AppError::Conflict(
                "the password was changed at the same time by another request; log in again".into(),
            ))
        }
        Err(error) => return Err(error.into()),
    };
    login_failures::clear(state.database(), &key, window_floor(state)).await?;
    tracing::info!(user_id = %caller.user.id, "password changed; every older token revoked");
    Ok(issue_session(state, caller.user.clone(), firm, generation))
}

/// Invites someone to the caller's firm; returns the invitation and the one-time token to send
/// them. Only the caller's own firm is checked for the email.
pub async fn invite_user(
    state: &AppState,
    caller: &CurrentUser,
    email: &str,
    role: &str,
) -> Result<(Invitation, String), AppError> {
    caller.require_admin()?;
    let email = normalise_email("email", email)?;
    let role = Role::parse(role).ok_or_else(|| {
        AppError::Unprocessable(format!("role {role:?} is not valid; use admin or member"))
    })?;
    if firms::find_user_by_email(state.database(), caller.firm_id(), &email)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "someone in your firm already uses the email {email}"
        )));
    }
    let token = auth::random_secret();
    let expires_at = time_text(state.clock().now() + chrono::Duration::days(INVITATION_DAYS));
    let invitation = firms::create_invitation(
        state.database(),
        NewInvitation {
            firm_id: caller.firm_id(),
            email: &email,
            role,
            token_hash: &auth::sha256_hex(token.as_bytes()),
            invited_by: &caller.user.id,
            expires_at: &expires_at,
        },
    )
    .await?;
    Ok((invitation, token))
}

/// Accepts an invitation: creates the user and logs them in.
pub async fn accept_invitation(
    state: &AppState,
    client: &ClientContext,
    token: &str,
    name: &str,
    password: &str,
) -> Result<Session, AppError> {
    let name = required("name", name, MAX_NAME_CHARS)?;
    let token_hash = auth::sha256_hex(token.trim().as_bytes());
    let (invitation, firm) = firms::open_invitation(
        state.database(),
        &token_hash,
        &time_text(state.clock().now()),
    )
    .await?
    .ok_or_else(|| AppError::Unauthorized(AcceptInvitationError::InvalidToken.to_string()))?;
    check_new_password(
        "password",
        password,
        PasswordContext {
            email: Some(&invitation.email),
            firm_name: Some(&firm.name),
        },
    )?;
    admit_client(state, client)?;
    let password_hash = hash_new_password(state, password.to_string()).await?;
    match firms::accept_invitation(state.database(), &token_hash, &name, &password_hash).await {
        Ok((firm, user)) => Ok(issue_session(state, user, firm, 0)),
        Err(AcceptInvitationError::InvalidToken) => Err(AppError::Unauthorized(
            AcceptInvitationError::InvalidToken.to_string(),
        )),
        Err(error @ AcceptInvitationError::EmailTaken(_)) => {
            Err(AppError::Conflict(error.to_string()))
        }
        Err(AcceptInvitationError::Db(error)) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("e", " Ann@Firm.COM ").unwrap(),
            "ann@firm.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@firm.com",
            "ann@firm",
            "a nn@firm.com",
            "ann@.com",
        ] {
            assert!(normalise_email("e", bad).is_err(), "{bad}");
        }
    }
}
