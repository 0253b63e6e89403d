//! RDS identifiers opsd makes: any text as an RDS identifier, a drill's scratch identifier
//! `<instance>-drill-<id>` within RDS's 63 characters, and the test of whether a name is one; and
//! where a snapshot or a restored instance is on its way to `available`.

use crate::platform::snapshots::identifier_part;

/// What separates the instance from the drill id in a scratch instance's identifier.
pub(super) const SCRATCH_INFIX: &str = "-drill-";
/// How many characters of the drill id a scratch identifier keeps.
pub(super) const DRILL_ID_CHARS: usize = 12;
/// The longest DB instance identifier RDS accepts.
pub(super) const INSTANCE_ID_MAX_CHARS: usize = 63;

/// Where a snapshot or an instance is on its way to `available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Ready,
    Waiting,
    Failed,
}

/// A snapshot is done when `available`, broken when `failed` or `error`; anything else
/// (`creating`, `copying`, …) is still under way.
pub(super) fn snapshot_phase(status: &str) -> Phase {
    match status.to_ascii_lowercase().as_str() {
        "available" => Phase::Ready,
        "failed" | "error" => Phase::Failed,
        _ => Phase::Waiting,
    }
}

/// A restored instance is done when `available`; the states RDS does not leave on its own
/// mean the restore failed; anything else (`creating`, `backing-up`, `modifying`,
/// `configuring-…`) is still under way.
pub(super) fn restore_phase(status: &str) -> Phase {
    match status.to_ascii_lowercase().as_str() {
        "available" => Phase::Ready,
        "failed" | "incompatible-restore" | "incompatible-parameters" | "storage-full" => {
            Phase::Failed
        }
        _ => Phase::Waiting,
    }
}

/// `text` made an RDS identifier of at most `max_chars`: lower case, every character other than
/// a letter or digit turned into a hyphen, no double, leading or trailing hyphens. Errors (as a
/// reason to append to the text) when nothing is left or it does not start with a letter.
pub(super) fn rds_identifier(text: &str, max_chars: usize) -> Result<String, String> {
    let mut identifier = String::with_capacity(text.len());
    for part in identifier_part(text, '-')
        .split('-')
        .filter(|part| !part.is_empty())
    {
        if !identifier.is_empty() {
            identifier.push('-');
        }
        identifier.push_str(part);
    }
    if identifier.is_empty() {
        return Err("has no letters or digits".into());
    }
    if !identifier.starts_with(|first: char| first.is_ascii_alphabetic()) {
        return Err(format!(
            "becomes {identifier:?}, which does not start with a letter as RDS requires"
        ));
    }
    if identifier.len() > max_chars {
        return Err(format!(
            "becomes {identifier:?}, {} characters; RDS allows {max_chars}",
            identifier.len()
        ));
    }
    Ok(identifier)
}

/// `<instance>-drill-` for an instance: lower case, and the instance part shortened so that a
/// full scratch identifier stays within RDS's 63 characters.
pub(super) fn scratch_prefix_of(instance: &str) -> String {
    let room = INSTANCE_ID_MAX_CHARS - SCRATCH_INFIX.len() - DRILL_ID_CHARS;
    let mut base: String = identifier_part(instance, '-')
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    base.truncate(room);
    let base = base.trim_end_matches('-');
    format!("{base}{SCRATCH_INFIX}")
}

/// The drill id's part of a scratch identifier: its first 12 letters and digits, lower case; a
/// drill id without any becomes the start of its SHA-256, so the identifier never ends with a
/// hyphen.
pub(super) fn drill_suffix(drill_id: &str) -> String {
    let short: String = drill_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(DRILL_ID_CHARS)
        .collect::<String>()
        .to_ascii_lowercase();
    if !short.is_empty() {
        return short;
    }
    use sha2::{Digest, Sha256};
    let digest = format!("{:x}", Sha256::digest(drill_id.as_bytes()));
    digest[..DRILL_ID_CHARS].to_string()
}

/// Whether `name` is `prefix` followed by a drill suffix (1 to 12 lowercase letters and digits).
pub(super) fn is_scratch_with_prefix(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|suffix| {
        !suffix.is_empty()
            && suffix.len() <= DRILL_ID_CHARS
            && suffix
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
    })
}
