//! What a release's environment may contain, and how its values are shown: keys are checked
//! (shape, the dynamic-loader and search-path family, names opsd sets itself), values are
//! bounded, and views show a keyed fingerprint of each value instead of the value.
//!
//! invariant: a value given to a release is never shown; views carry `fingerprint(value)`, an
//! HMAC-SHA-256 under a key only the store holds, so equal values can be recognised but a viewer
//! cannot test guesses against it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The most keys one release's request may set.
pub const MAX_ENV_KEYS: usize = 100;
/// The longest key.
pub const MAX_KEY_BYTES: usize = 128;
/// The longest value.
pub const MAX_VALUE_BYTES: usize = 32 * 1024;

/// Keys that change how the dynamic loader, the C library or a shell find and load code: setting
/// them lets a release load code from anywhere on the host. Refused unless the service's
/// `allow_env` names them. A trailing `*` matches any suffix.
pub const LOADER_AND_PATH_KEYS: [&str; 13] = [
    "LD_*",
    "DYLD_*",
    "PATH",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "RESOLV_HOST_CONF",
    "MALLOC_TRACE",
    "IFS",
    "BASH_ENV",
];

/// Keys opsd sets itself for every local release.
pub const KEYS_SET_BY_OPSD: [&str; 1] = ["PORT"];

/// Why a key or value cannot be given to a release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvRuleViolation {
    #[error("an environment key is empty")]
    EmptyKey,
    #[error("environment key {key:?} is longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong { key: String },
    #[error("environment key {key:?} must start with a letter or '_' and hold only letters, digits and '_'")]
    MalformedKey { key: String },
    #[error("environment key {key:?} changes how programs are found or loaded ({family}); a release may set it only when the service's `allow_env` in opsd.yaml names it")]
    LoaderOrPathKey { key: String, family: &'static str },
    #[error("environment key {key:?} is set by opsd itself")]
    SetByOpsd { key: String },
    #[error("the value of {key:?} is longer than {MAX_VALUE_BYTES} bytes")]
    ValueTooLong { key: String },
    #[error("the value of {key:?} contains a NUL byte")]
    ValueWithNul { key: String },
    #[error("a release may set at most {MAX_ENV_KEYS} environment keys; {count} were given")]
    TooManyKeys { count: usize },
}

impl EnvRuleViolation {
    /// The key the violation is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            EnvRuleViolation::EmptyKey | EnvRuleViolation::TooManyKeys { .. } => None,
            EnvRuleViolation::KeyTooLong { key }
            | EnvRuleViolation::MalformedKey { key }
            | EnvRuleViolation::LoaderOrPathKey { key, .. }
            | EnvRuleViolation::SetByOpsd { key }
            | EnvRuleViolation::ValueTooLong { key }
            | EnvRuleViolation::ValueWithNul { key } => Some(key),
        }
    }
}

/// The entry of [`LOADER_AND_PATH_KEYS`] that `key` belongs to, if any.
pub fn loader_or_path_family(key: &str) -> Option<&'static str> {
    LOADER_AND_PATH_KEYS
        .iter()
        .copied()
        .find(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == *pattern,
        })
}

/// Checks one key: its shape, the loader/path family (unless `allowed` names it), and the keys
/// opsd sets itself.
pub fn check_key(key: &str, allowed: &[String]) -> Result<(), EnvRuleViolation> {
    if key.is_empty() {
        return Err(EnvRuleViolation::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(EnvRuleViolation::KeyTooLong { key: shorten(key) });
    }
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    if !first_ok || !chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
        return Err(EnvRuleViolation::MalformedKey { key: shorten(key) });
    }
    if KEYS_SET_BY_OPSD.contains(&key) {
        return Err(EnvRuleViolation::SetByOpsd {
            key: key.to_string(),
        });
    }
    if let Some(family) = loader_or_path_family(key) {
        if !allowed.iter().any(|name| name == key) {
            return Err(EnvRuleViolation::LoaderOrPathKey {
                key: key.to_string(),
                family,
            });
        }
    }
    Ok(())
}

/// Checks one value.
pub fn check_value(key: &str, value: &str) -> Result<(), EnvRuleViolation> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(EnvRuleViolation::ValueTooLong {
            key: key.to_string(),
        });
    }
    if value.contains('\0') {
        return Err(EnvRuleViolation::ValueWithNul {
            key: key.to_string(),
        });
    }
    Ok(())
}

/// Checks a release's environment: every key and value, and how many there are.
pub fn check_env(
    env: &BTreeMap<String, String>,
    allowed: &[String],
) -> Result<(), EnvRuleViolation> {
    if env.len() > MAX_ENV_KEYS {
        return Err(EnvRuleViolation::TooManyKeys { count: env.len() });
    }
    for (key, value) in env {
        check_key(key, allowed)?;
        check_value(key, value)?;
    }
    Ok(())
}

/// A key cut to a length that is safe to show in an error.
fn shorten(key: &str) -> String {
    if key.len() <= 40 {
        return key.to_string();
    }
    let mut end = 40;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &key[..end])
}

/// Turns values into fingerprints under a secret key: `hmac-sha256:` and the first 16 hex digits
/// of HMAC-SHA-256(key, value).
#[derive(Clone)]
pub struct Fingerprinter {
    key: [u8; 32],
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Fingerprinter { key: <hidden> }")
    }
}

const HMAC_BLOCK: usize = 64;

impl Fingerprinter {
    pub fn new(key: [u8; 32]) -> Fingerprinter {
        Fingerprinter { key }
    }

    /// The fingerprint of `value`.
    pub fn fingerprint(&self, value: &str) -> String {
        let mut inner_pad = [0x36u8; HMAC_BLOCK];
        let mut outer_pad = [0x5cu8; HMAC_BLOCK];
        for (index, byte) in self.key.iter().enumerate() {
            inner_pad[index] ^= byte;
            outer_pad[index] ^= byte;
        }
        let inner = Sha256::new()
            .chain_update(inner_pad)
            .chain_update(value.as_bytes())
            .finalize();
        let outer = Sha256::new()
            .chain_update(outer_pad)
            .chain_update(inner)
            .finalize();
        let hex: String = outer[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("hmac-sha256:{hex}")
    }

    /// The environment with each value replaced by its fingerprint.
    pub fn redact(&self, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        env.iter()
            .map(|(key, value)| (key.clone(), self.fingerprint(value)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn ordinary_keys_pass() {
        for key in ["STENO_CHAOS_ERROR_RATE", "_X", "a1", "ANTHROPIC_API_KEY"] {
            assert_eq!(check_key(key, &[]), Ok(()), "{key}");
        }
    }

    #[test]
    fn malformed_keys_are_named() {
        assert_eq!(check_key("", &[]), Err(EnvRuleViolation::EmptyKey));
        for key in ["A=B", "1ABC", "A B", "A-B", "É", "A\0"] {
            let error = check_key(key, &[]).unwrap_err();
            assert!(
                matches!(error, EnvRuleViolation::MalformedKey { .. }),
                "{key}: {error}"
            );
        }
        let long = "A".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(
            check_key(&long, &[]),
            Err(EnvRuleViolation::KeyTooLong { .. })
        ));
    }

    #[test]
    fn the_loader_and_path_family_needs_an_explicit_allowance() {
        for key in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "PATH",
            "DYLD_INSERT_LIBRARIES",
            "GCONV_PATH",
            "BASH_ENV",
        ] {
            let error = check_key(key, &[]).unwrap_err();
            assert!(
                matches!(error, EnvRuleViolation::LoaderOrPathKey { .. }),
                "{key}: {error}"
            );
            assert!(error.to_string().contains("allow_env"));
            assert_eq!(check_key(key, &[key.to_string()]), Ok(()));
        }
        // Similar names outside the family are ordinary keys.
        assert_eq!(check_key("PATHWAY", &[]), Ok(()));
        assert_eq!(check_key("OLD_PRELOAD", &[]), Ok(()));
    }

    #[test]
    fn keys_opsd_sets_are_refused() {
        assert_eq!(
            check_key("PORT", &[]),
            Err(EnvRuleViolation::SetByOpsd { key: "PORT".into() })
        );
    }

    #[test]
    fn values_are_bounded_and_free_of_nul() {
        assert!(check_value("K", &"x".repeat(MAX_VALUE_BYTES)).is_ok());
        assert_eq!(
            check_value("K", &"x".repeat(MAX_VALUE_BYTES + 1)),
            Err(EnvRuleViolation::ValueTooLong { key: "K".into() })
        );
        assert_eq!(
            check_value("K", "a\0b"),
            Err(EnvRuleViolation::ValueWithNul { key: "K".into() })
        );
        let many: BTreeMap<String, String> = (0..=MAX_ENV_KEYS)
            .map(|index| (format!("K{index}"), String::new()))
            .collect();
        assert_eq!(
            check_env(&many, &[]),
            Err(EnvRuleViolation::TooManyKeys {
                count: MAX_ENV_KEYS + 1
            })
        );
        assert_eq!(
            check_env(&env(&[("A", "1"), ("LD_PRELOAD", "/tmp/x.so")]), &[])
                .unwrap_err()
                .key(),
            Some("LD_PRELOAD")
        );
    }

    #[test]
    fn fingerprints_are_keyed_stable_and_hide_the_value() {
        let one = Fingerprinter::new([1; 32]);
        let other = Fingerprinter::new([2; 32]);
        let secret = "sk-live-123456";
        let print = one.fingerprint(secret);
        assert!(print.starts_with("hmac-sha256:"));
        assert_eq!(print.len(), "hmac-sha256:".len() + 16);
        assert!(!print.contains(secret));
        assert_eq!(print, one.fingerprint(secret));
        assert_ne!(print, one.fingerprint("sk-live-123457"));
        assert_ne!(print, other.fingerprint(secret));
        let redacted = one.redact(&env(&[("KEY", secret)]));
        assert_eq!(redacted["KEY"], print);
        assert!(!format!("{one:?}").contains("1, 1"));
    }

    #[test]
    fn hmac_matches_the_published_test_vector() {
        // RFC 4231 test case 2 uses a 4-byte key; ours is fixed at 32 bytes, so check the
        // construction against a key zero-padded to 32 bytes, which HMAC treats identically.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let print = Fingerprinter::new(key).fingerprint("what do ya want for nothing?");
        assert_eq!(print, "hmac-sha256:5bdcc146bf60754e");
    }
}
