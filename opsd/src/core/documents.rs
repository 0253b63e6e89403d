//! The document store is part of the backup: what a snapshot's manifest holds (each object's
//! key, size and SHA-256, and its version where the store keeps versions), and the drill's
//! verdict on the documents a restored database references: each must exist in the store with
//! the digest the restored row records. A missing or changed document fails the drill, named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::drill::{ItemStatus, VerificationItem};

/// One object of the document store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEntry {
    pub key: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// The object's version, on a store that keeps versions (S3 with versioning on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Where the snapshot keeps its own copy, on a store without versions that makes one (an
    /// unversioned S3 bucket: `opsd-snapshots/<snapshot>/<object key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_key: Option<String>,
}

/// The document store at a snapshot's instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentManifest {
    pub snapshot_id: String,
    /// The store, as its platform describes it.
    pub store: String,
    pub documents: Vec<DocumentEntry>,
}

/// A document a restored row references: its key and the digest the row records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentReference {
    pub key: String,
    pub sha256: String,
}

/// How many problem documents one verification item names before it counts the rest.
const NAMED_PROBLEMS: usize = 20;

/// The verification items of the documents the restored rows reference. `found` is each
/// referenced key as the store has it now (`None`: missing); `manifest`, when the snapshot has
/// one, says whether a changed document was already different at snapshot time.
pub fn verify_documents(
    references: &[DocumentReference],
    found: &BTreeMap<String, Option<DocumentEntry>>,
    manifest: Option<&DocumentManifest>,
) -> Vec<VerificationItem> {
    let at_snapshot: BTreeMap<&str, &DocumentEntry> = manifest
        .map(|manifest| {
            manifest
                .documents
                .iter()
                .map(|entry| (entry.key.as_str(), entry))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    for reference in references {
        let expected = reference.sha256.to_ascii_lowercase();
        match found.get(&reference.key).and_then(Option::as_ref) {
            None => problems.push(format!(
                "document {} is missing from the store{}",
                reference.key,
                match at_snapshot.get(reference.key.as_str()) {
                    Some(then) => kept_by_snapshot(then),
                    None => String::new(),
                }
            )),
            Some(entry) if entry.sha256 != expected => problems.push(format!(
                "document {} has sha256 {} in the store, the restored row says {}{}",
                reference.key,
                short(&entry.sha256),
                short(&expected),
                match at_snapshot.get(reference.key.as_str()) {
                    Some(then) if then.sha256 == expected => {
                        " (it was intact at snapshot time: changed since)"
                    }
                    _ => "",
                }
            )),
            Some(_) => {}
        }
    }
    let mut items = Vec::new();
    if problems.is_empty() {
        items.push(VerificationItem {
            name: "documents".into(),
            status: ItemStatus::Passed,
            detail: format!(
                "all {} documents the restored rows reference are in the store with their digest",
                references.len()
            ),
        });
    } else {
        let total = problems.len();
        for problem in problems.into_iter().take(NAMED_PROBLEMS) {
            items.push(VerificationItem {
                name: "documents".into(),
                status: ItemStatus::Failed,
                detail: problem,
            });
        }
        if total > NAMED_PROBLEMS {
            items.push(VerificationItem {
                name: "documents".into(),
                status: ItemStatus::Failed,
                detail: format!(
                    "and {} more documents missing or changed",
                    total - NAMED_PROBLEMS
                ),
            });
        }
    }
    items
}

/// What the snapshot kept of a document, for a message.
fn kept_by_snapshot(entry: &DocumentEntry) -> String {
    match (&entry.copy_key, &entry.version_id) {
        (Some(copy), _) => format!(" (the snapshot's manifest has it; its copy is {copy})"),
        (None, Some(version)) => {
            format!(" (the snapshot's manifest has it; S3 keeps it as version {version})")
        }
        (None, None) => " (the snapshot's manifest has it)".to_string(),
    }
}

/// The item when the documents could not be verified (the reason says why); never passed.
pub fn documents_not_checked(reason: impl Into<String>) -> VerificationItem {
    VerificationItem {
        name: "documents".into(),
        status: ItemStatus::NotChecked,
        detail: reason.into(),
    }
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, sha256: &str) -> DocumentEntry {
        DocumentEntry {
            key: key.into(),
            size: 10,
            sha256: sha256.into(),
            version_id: None,
            copy_key: None,
        }
    }

    fn reference(key: &str, sha256: &str) -> DocumentReference {
        DocumentReference {
            key: key.into(),
            sha256: sha256.into(),
        }
    }

    #[test]
    fn every_referenced_document_must_be_in_the_store_with_its_digest() {
        let references = vec![
            reference("firm-1/doc-1", "aaaa"),
            reference("firm-1/doc-2", "BBBB"),
            reference("firm-2/doc-3", "cccc"),
        ];
        let manifest = DocumentManifest {
            snapshot_id: "s".into(),
            store: "dir".into(),
            documents: vec![
                entry("firm-1/doc-1", "aaaa"),
                entry("firm-1/doc-2", "bbbb"),
                entry("firm-2/doc-3", "cccc"),
            ],
        };
        let intact: BTreeMap<String, Option<DocumentEntry>> = manifest
            .documents
            .iter()
            .map(|entry| (entry.key.clone(), Some(entry.clone())))
            .collect();
        let items = verify_documents(&references, &intact, Some(&manifest));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, ItemStatus::Passed);
        assert!(items[0].detail.contains("all 3 documents"));

        let mut damaged = intact.clone();
        damaged.insert("firm-1/doc-1".into(), None);
        damaged.insert("firm-2/doc-3".into(), Some(entry("firm-2/doc-3", "dddd")));
        let items = verify_documents(&references, &damaged, Some(&manifest));
        let details: Vec<&str> = items.iter().map(|item| item.detail.as_str()).collect();
        assert!(items.iter().all(|item| item.status == ItemStatus::Failed));
        assert_eq!(
            details,
            vec![
                "document firm-1/doc-1 is missing from the store (the snapshot's manifest has it)",
                "document firm-2/doc-3 has sha256 dddd in the store, the restored row says cccc (it was intact at snapshot time: changed since)",
            ]
        );
    }

    #[test]
    fn many_problems_are_named_up_to_a_bound_and_counted() {
        let references: Vec<DocumentReference> = (0..25)
            .map(|index| reference(&format!("doc-{index}"), "aa"))
            .collect();
        let items = verify_documents(&references, &BTreeMap::new(), None);
        assert_eq!(items.len(), 21);
        assert_eq!(items[20].detail, "and 5 more documents missing or changed");
        assert_eq!(documents_not_checked("RDS").status, ItemStatus::NotChecked);
    }
}
