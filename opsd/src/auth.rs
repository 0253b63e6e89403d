//! API tokens: generated secrets, stored only as their SHA-256, with viewer and operator roles.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, TokenRole};

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new random token: `opsd_` plus 32 random bytes in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "opsd_{}",
        bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

/// Tokens created on the first start.
pub struct FirstTokens {
    pub operator: String,
    pub viewer: String,
}

/// Creates an operator and a viewer token when the store has none; returns them (once).
pub async fn ensure_tokens(store: &Store) -> Result<Option<FirstTokens>, StoreError> {
    if store.count_tokens().await? > 0 {
        return Ok(None);
    }
    let operator = new_token();
    let viewer = new_token();
    store
        .insert_token(
            &sha256_hex(operator.as_bytes()),
            "operator",
            TokenRole::Operator,
        )
        .await?;
    store
        .insert_token(&sha256_hex(viewer.as_bytes()), "viewer", TokenRole::Viewer)
        .await?;
    Ok(Some(FirstTokens { operator, viewer }))
}

/// Why a named token was not created.
#[derive(Debug, thiserror::Error)]
pub enum TokenCreateError {
    #[error("{0:?} is not a token name; use 1 to 64 letters, digits, '.', '_', '-' or '@' (a person's name or address)")]
    BadName(String),
    #[error(
        "a token named {0:?} exists; a name stands for one person (approvals count once per name)"
    )]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token for the person `name` with `role` and returns its secret, shown once; only
/// its hash is stored. Names are unique: they are who the audit log and approvals name.
pub async fn create_named_token(
    store: &Store,
    name: &str,
    role: TokenRole,
) -> Result<String, TokenCreateError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !valid {
        return Err(TokenCreateError::BadName(name.chars().take(64).collect()));
    }
    if store
        .list_tokens()
        .await?
        .iter()
        .any(|token| token.name == name)
    {
        return Err(TokenCreateError::NameTaken(name.to_string()));
    }
    let secret = new_token();
    store
        .insert_token(&sha256_hex(secret.as_bytes()), name, role)
        .await?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let first = new_token();
        assert!(first.starts_with("opsd_") && first.len() == 69);
        assert_ne!(first, new_token());
    }

    #[tokio::test]
    async fn named_tokens_are_unique_per_person_and_stored_hashed() {
        let store = crate::store::test_store().await;
        let secret = create_named_token(&store, "alice@firm.example", TokenRole::Operator)
            .await
            .unwrap();
        let found = store
            .find_token(&sha256_hex(secret.as_bytes()))
            .await
            .unwrap()
            .expect("the token works");
        assert_eq!(found.name, "alice@firm.example");
        assert_eq!(found.role, TokenRole::Operator);
        let again = create_named_token(&store, "alice@firm.example", TokenRole::Viewer).await;
        assert!(matches!(again, Err(TokenCreateError::NameTaken(_))));
        for bad in ["", "a b", "x\n", &"n".repeat(65), "<script>"] {
            let refused = create_named_token(&store, bad, TokenRole::Viewer).await;
            assert!(
                matches!(refused, Err(TokenCreateError::BadName(_))),
                "{bad:?}"
            );
        }
        let listed = store.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{:?}", listed[0]).contains(&secret));
    }
}
