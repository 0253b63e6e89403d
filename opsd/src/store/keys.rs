//! Keys opsd generates for itself on first use and keeps only in the store (for now the key of
//! the fingerprints views show in place of release environment values).

use chrono::Utc;
use rand::RngCore;
use sqlx::Row;

use super::{time_text, Store, StoreError};

const FINGERPRINT_KEY: &str = "fingerprint";

impl Store {
    /// The fingerprint key, created on first use. Concurrent first uses agree on one key: the
    /// insert is ignored when a key exists, and the stored one is read back.
    pub async fn fingerprint_key(&self) -> Result<[u8; 32], StoreError> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let fresh_hex: String = fresh.iter().map(|byte| format!("{byte:02x}")).collect();
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO store_keys (name, key_hex, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(FINGERPRINT_KEY)
        .bind(&fresh_hex)
        .bind(time_text(Utc::now()))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.stored_fingerprint_key()
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "store_keys".to_string(),
                detail: "the fingerprint key just stored cannot be read back".to_string(),
            })
    }

    /// The fingerprint key if one was created, without creating it (a store that refuses writes
    /// can still read it).
    pub async fn stored_fingerprint_key(&self) -> Result<Option<[u8; 32]>, StoreError> {
        let row = sqlx::query("SELECT key_hex FROM store_keys WHERE name = $1")
            .bind(FINGERPRINT_KEY)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.try_get("key_hex")?;
        decode_key(&stored)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                what: "store_keys.key_hex".to_string(),
                detail: "not 64 hexadecimal digits".to_string(),
            })
    }
}

fn decode_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fingerprint_key_is_made_once_and_kept() {
        let store = crate::store::tests::test_store().await;
        let first = store.fingerprint_key().await.unwrap();
        let second = store.fingerprint_key().await.unwrap();
        assert_eq!(first, second);
        assert_ne!(first, [0u8; 32]);
        assert_eq!(store.stored_fingerprint_key().await.unwrap(), Some(first));
    }

    #[tokio::test]
    async fn reading_the_fingerprint_key_does_not_create_it() {
        let store = crate::store::tests::test_store().await;
        assert_eq!(store.stored_fingerprint_key().await.unwrap(), None);
        assert_eq!(store.stored_fingerprint_key().await.unwrap(), None);
    }

    #[test]
    fn keys_decode_only_from_64_hex_digits() {
        assert_eq!(decode_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_key("abc"), None);
        assert_eq!(decode_key(&"zz".repeat(32)), None);
    }
}
