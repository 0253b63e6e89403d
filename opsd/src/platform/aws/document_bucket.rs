//! A document store that is an S3 bucket prefix (Steno's `STENO_S3_BUCKET`/`STENO_S3_PREFIX`):
//! the key `firm-1/doc-7` is the object `<prefix>firm-1/doc-7`. A manifest lists the prefix
//! (`ListObjectsV2`, paginated) and reads each object (`GetObject`, streamed through SHA-256),
//! keeping the version id S3 reports when the bucket is versioned; in a bucket without versions
//! the snapshot keeps its own copy of each object (`CopyObject` to
//! `opsd-snapshots/<snapshot>/<object key>`, removed with the snapshot), which listings leave out.

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use super::retry::{call_with_retries, AwsCallError};
use crate::config::S3DocumentsConfig;
use crate::core::documents::DocumentEntry;
use crate::core::retry::RetryPolicy;
use crate::platform::documents::{is_plain_key, DocumentStore, MAX_MANIFEST_OBJECTS};
use crate::platform::PlatformError;

/// Where a snapshot's copies of unversioned objects go, at the bucket's root.
const SNAPSHOT_COPIES: &str = "opsd-snapshots/";

/// The documents under one bucket prefix.
pub struct BucketDocuments {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    retry: RetryPolicy,
}

fn failed(operation: impl Into<String>, message: impl ToString) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.to_string(),
    }
}

fn s3_failure(error: AwsCallError) -> PlatformError {
    failed(
        format!("{} of {}", error.operation, error.resource),
        error.to_string(),
    )
}

impl BucketDocuments {
    /// A client of the bucket's region (and endpoint, addressed by path, for emulators and VPC
    /// endpoints), with credentials from the standard chain.
    pub async fn connect(config: &S3DocumentsConfig) -> BucketDocuments {
        let shared = super::shared_sdk_config(&config.region, config.endpoint_url.as_deref()).await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared);
        if config.endpoint_url.is_some() {
            builder = builder.force_path_style(true);
        }
        BucketDocuments {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            retry: config.retry,
        }
    }

    /// Reads one object through SHA-256; `None` when it does not exist.
    async fn read(&self, key: &str) -> Result<Option<DocumentEntry>, PlatformError> {
        let object_key = format!("{}{key}", self.prefix);
        let answer = call_with_retries(
            &self.retry,
            "S3 GetObject",
            &format!("s3://{}/{object_key}", self.bucket),
            || {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&object_key)
                    .send()
            },
        )
        .await;
        let output = match answer {
            Ok(output) => output,
            Err(error)
                if error.facts.code.as_deref() == Some("NoSuchKey")
                    || error.facts.status == Some(404) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(s3_failure(error)),
        };
        let version_id = output.version_id().map(str::to_string);
        let (size, sha256) = digest_stream(output.body)
            .await
            .map_err(|error| failed(format!("reading s3://{}/{object_key}", self.bucket), error))?;
        Ok(Some(DocumentEntry {
            key: key.to_string(),
            size,
            sha256,
            version_id,
            copy_key: None,
        }))
    }
}

async fn digest_stream(mut body: ByteStream) -> Result<(u64, String), String> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(|error| error.to_string())? {
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((size, format!("{:x}", hasher.finalize())))
}

#[async_trait::async_trait]
impl DocumentStore for BucketDocuments {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn manifest(&self) -> Result<Vec<DocumentEntry>, PlatformError> {
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = call_with_retries(&self.retry, "S3 ListObjectsV2", &self.describe(), || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .set_continuation_token(continuation.clone())
                    .send()
            })
            .await
            .map_err(s3_failure)?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|key| key.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if keys.len() == MAX_MANIFEST_OBJECTS {
                    return Err(failed(
                        format!("listing {}", self.describe()),
                        format!("more than {MAX_MANIFEST_OBJECTS} documents; a manifest lists at most that many"),
                    ));
                }
                keys.push(key.to_string());
            }
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string())
                }
                _ => break,
            }
        }
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            // Deleted between the listing and the read: not part of the manifest.
            if let Some(entry) = self.read(&key).await? {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    async fn entry(&self, key: &str) -> Result<Option<DocumentEntry>, PlatformError> {
        if !is_plain_key(key) {
            return Ok(None);
        }
        self.read(key).await
    }

    async fn preserve(
        &self,
        snapshot_id: &str,
        entries: &mut [DocumentEntry],
    ) -> Result<(), PlatformError> {
        for entry in entries
            .iter_mut()
            .filter(|entry| entry.version_id.is_none())
        {
            let source = format!("{}{}", self.prefix, entry.key);
            let copy_key = format!("{SNAPSHOT_COPIES}{snapshot_id}/{source}");
            let copy_source = format!("{}/{}", self.bucket, encode_key(&source));
            call_with_retries(
                &self.retry,
                "S3 CopyObject",
                &format!("s3://{}/{source} to {copy_key}", self.bucket),
                || {
                    self.client
                        .copy_object()
                        .bucket(&self.bucket)
                        .key(&copy_key)
                        .copy_source(&copy_source)
                        .send()
                },
            )
            .await
            .map_err(s3_failure)?;
            entry.copy_key = Some(copy_key);
        }
        Ok(())
    }

    async fn forget(&self, snapshot_id: &str) -> Result<(), PlatformError> {
        let prefix = format!("{SNAPSHOT_COPIES}{snapshot_id}/");
        loop {
            let page = call_with_retries(
                &self.retry,
                "S3 ListObjectsV2",
                &format!("s3://{}/{prefix}", self.bucket),
                || {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(&prefix)
                        .send()
                },
            )
            .await
            .map_err(s3_failure)?;
            let keys: Vec<String> = page
                .contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_string))
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            for key in keys {
                call_with_retries(
                    &self.retry,
                    "S3 DeleteObject",
                    &format!("s3://{}/{key}", self.bucket),
                    || {
                        self.client
                            .delete_object()
                            .bucket(&self.bucket)
                            .key(&key)
                            .send()
                    },
                )
                .await
                .map_err(s3_failure)?;
            }
        }
    }
}

/// A key in a `CopyObject` source: each byte outside the unreserved set and `/` percent-encoded.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
