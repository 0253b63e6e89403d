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
}
