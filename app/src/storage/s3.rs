//! S3 storage backend: documents as objects in an S3 bucket (or an S3-compatible endpoint), under an optional key prefix.
//!
//! Credentials come from the standard AWS chain (environment, profile, SSO,
//! container or instance role). An endpoint URL can point the client at an
//! emulator or a VPC endpoint; path-style addressing can be forced for those.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::{validate_key, DocumentStorage, StorageError};

/// Where and how to reach the S3 bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Optional key prefix, such as "steno/documents"; keys are stored as "{prefix}/{key}".
    pub prefix: Option<String>,
    /// AWS region; when absent, the standard AWS chain decides (AWS_REGION, profile).
    pub region: Option<String>,
    /// Custom endpoint, for emulators and VPC endpoints, such as "http://127.0.0.1:9000".
    pub endpoint_url: Option<String>,
    /// Address buckets as "{endpoint}/{bucket}" instead of "{bucket}.{endpoint}".
    pub force_path_style: bool,
    /// Attempts per request including the first (standard retry mode); the SDK default when absent.
    pub max_attempts: Option<u32>,
}

/// Stores documents as objects in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: Option<String>,
}

impl S3Storage {
    /// Connects with credentials and defaults from the standard AWS chain.
    /// Sends no request; use [`DocumentStorage::check`] to test reachability.
    pub async fn new(settings: S3Settings) -> Result<Self, StorageError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk_config = loader.load().await;
        Self::from_sdk_config(&sdk_config, settings)
    }

    /// Connects with an already loaded AWS configuration (credentials, region, retries),
    /// then applies `settings` on top. Sends no request.
    pub fn from_sdk_config(
        sdk_config: &aws_config::SdkConfig,
        settings: S3Settings,
    ) -> Result<Self, StorageError> {
        let S3Settings {
            bucket,
            prefix,
            region,
            endpoint_url,
            force_path_style,
            max_attempts,
        } = settings;
        let bucket = bucket.trim().to_string();
        if bucket.is_empty() {
            return Err(StorageError::Configuration {
                message: "the S3 bucket name is empty; set the bucket to store documents in"
                    .to_string(),
            });
        }
        let prefix = normalize_prefix(prefix)?;

        let mut builder = aws_sdk_s3::config::Builder::from(sdk_config);
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region));
        }
        if let Some(endpoint_url) = endpoint_url {
            builder = builder.endpoint_url(endpoint_url);
        }
        if force_path_style {
            builder = builder.force_path_style(true);
        }
        if let Some(max_attempts) = max_attempts {
            if max_attempts == 0 {
                return Err(StorageError::Configuration {
                    message: "S3 max attempts is 0; set it to 1 or more (1 means no retries)"
                        .to_string(),
                });
            }
            builder = builder.retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(max_attempts),
            );
        }
        let config = builder.build();
        if config.region().is_none() {
            return Err(StorageError::Configuration {
                message: "no AWS region is configured for S3; set the S3 region setting, \
                          AWS_REGION, or a region in the AWS profile"
                    .to_string(),
            });
        }
        Ok(S3Storage {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
            prefix,
        })
    }

    /// The bucket documents are stored in.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key for a document key: "{prefix}/{key}", or the key itself without prefix.
    fn object_key(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_string(),
        }
    }

    fn error(&self, operation: &'static str, key: Option<&str>, message: String) -> StorageError {
        StorageError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            message,
        }
    }
}

/// Trims surrounding '/' from the prefix and checks it follows the key rules; empty means none.
fn normalize_prefix(prefix: Option<String>) -> Result<Option<String>, StorageError> {
    let Some(prefix) = prefix else {
        return Ok(None);
    };
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    validate_key(trimmed).map_err(|error| StorageError::Configuration {
        message: format!("the S3 key prefix {prefix:?} is not usable: {error}"),
    })?;
    Ok(Some(trimmed.to_string()))
}

/// Describes an SDK error: the service's code and message with a hint, or the transport failure.
fn describe_sdk_error<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(service_error) = error else {
        return format!(
            "{}; check the S3 endpoint URL, the network and the AWS credentials",
            DisplayErrorContext(error)
        );
    };
    let status = service_error.raw().status().as_u16();
    let code = service_error.err().code().unwrap_or("no error code");
    let detail = service_error
        .err()
        .message()
        .map(|message| format!(": {message}"))
        .unwrap_or_default();
    let hint = match (status, code) {
        (_, "NoSuchBucket") | (404, _) => {
            "; check the bucket name and region, and that the bucket exists"
        }
        (403, _)
        | (_, "AccessDenied")
        | (_, "InvalidAccessKeyId")
        | (_, "SignatureDoesNotMatch") => {
            "; check the AWS credentials and that they may use this bucket"
        }
        (301, _) | (_, "PermanentRedirect") | (_, "AuthorizationHeaderMalformed") => {
            "; the bucket is in another region: set the S3 region to the bucket's region"
        }
        _ => "",
    };
    format!("HTTP {status} {code}{detail}{hint}")
}

#[async_trait::async_trait]
impl DocumentStorage for S3Storage {
    async fn put(
        &self,
        key: &str,
        bytes: bytes::Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| self.error("PutObject", Some(key), describe_sdk_error(&error)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<bytes::Bytes, StorageError> {
        validate_key(key)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|error| {
                let missing_key = error
                    .as_service_error()
                    .is_some_and(|service_error| service_error.is_no_such_key());
                if missing_key {
                    StorageError::NotFound {
                        key: key.to_string(),
                    }
                } else {
                    self.error("GetObject", Some(key), describe_sdk_error(&error))
                }
            })?;
        let body = output.body.collect().await.map_err(|error| {
            self.error(
                "GetObject",
                Some(key),
                format!(
                    "reading the object body failed: {}; retry the request",
                    DisplayErrorContext(&error)
                ),
            )
        })?;
        Ok(body.into_bytes())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|error| self.error("DeleteObject", Some(key), describe_sdk_error(&error)))?;
        Ok(())
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|error| self.error("HeadBucket", None, describe_sdk_error(&error)))?;
        Ok(())
    }

    fn describe(&self) -> String {
        match &self.prefix {
            Some(prefix) => format!("s3://{}/{prefix}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use e2e_tests::aws_emulator::{AwsEmulator, TEST_CREDENTIAL, TEST_REGION};

    /// An AWS configuration built only from constants: the emulator's static test credentials,
    /// [`TEST_REGION`], one attempt per request. Reads no environment variables or files.
    fn test_sdk_config() -> aws_config::SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new(
            TEST_CREDENTIAL,
            TEST_CREDENTIAL,
            None,
            None,
            "aws-emulator",
        );
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(TEST_REGION))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build()
    }

    /// An S3 client straight to the emulator's moto, with path-style addressing and no retries,
    /// independent of the machine's AWS configuration.
    async fn s3_client(emulator: &AwsEmulator) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&emulator.sdk_config().await)
            .endpoint_url(emulator.moto_url())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn settings_for(emulator: &AwsEmulator, bucket: &str, prefix: Option<&str>) -> S3Settings {
        S3Settings {
            bucket: bucket.to_string(),
            prefix: prefix.map(str::to_string),
            region: None,
            endpoint_url: Some(emulator.moto_url()),
            force_path_style: true,
            max_attempts: Some(1),
        }
    }

    #[test]
    fn describe_names_bucket_and_prefix() {
        let sdk_config = test_sdk_config();
        let plain = S3Settings {
            bucket: "documents".to_string(),
            ..S3Settings::default()
        };
        let storage = S3Storage::from_sdk_config(&sdk_config, plain.clone()).unwrap();
        assert_eq!(storage.describe(), "s3://documents");
        assert_eq!(storage.object_key("firm-1/doc"), "firm-1/doc");

        let prefixed = S3Settings {
            prefix: Some("/steno/documents/".to_string()),
            ..plain.clone()
        };
        let storage = S3Storage::from_sdk_config(&sdk_config, prefixed).unwrap();
        assert_eq!(storage.describe(), "s3://documents/steno/documents");
        assert_eq!(
            storage.object_key("firm-1/doc"),
            "steno/documents/firm-1/doc"
        );

        let empty_prefix = S3Settings {
            prefix: Some("/".to_string()),
            ..plain
        };
        let storage = S3Storage::from_sdk_config(&sdk_config, empty_prefix).unwrap();
        assert_eq!(storage.describe(), "s3://documents");
    }

    #[test]
    fn rejects_unusable_settings() {
        let sdk_config = test_sdk_config();
        let valid = S3Settings {
            bucket: "documents".to_string(),
            ..S3Settings::default()
        };
        for settings in [
            S3Settings {
                bucket: " ".to_string(),
                ..valid.clone()
            },
            S3Settings {
                prefix: Some("steno/../other".to_string()),
                ..valid.clone()
            },
            S3Settings {
                max_attempts: Some(0),
                ..valid.clone()
            },
        ] {
            let error = S3Storage::from_sdk_config(&sdk_config, settings).unwrap_err();
            assert!(
                matches!(error, StorageError::Configuration { .. }),
                "{error:?}"
            );
        }

        let without_region = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let error = S3Storage::from_sdk_config(&without_region, valid).unwrap_err();
        assert!(error.to_string().contains("region"), "{error}");
    }

    #[tokio::test]
    async fn round_trip_against_the_emulator() {
        let emulator = AwsEmulator::start();
        let raw_client = s3_client(&emulator).await;
        raw_client
            .create_bucket()
            .bucket("steno-documents")
            .send()
            .await
            .unwrap();
        let storage = S3Storage::from_sdk_config(
            &test_sdk_config(),
            settings_for(&emulator, "steno-documents", Some("tenant-a")),
        )
        .unwrap();
        storage.check().await.unwrap();

        let key = "firm-1/3f2b6c1e-8d7a-4c1e-9a51-0b6f3e2d1c4a";
        storage
            .put(key, Bytes::from_static(b"first version"), "application/pdf")
            .await
            .unwrap();
        assert_eq!(
            storage.get(key).await.unwrap(),
            Bytes::from_static(b"first version")
        );

        // The object lands under the prefix, with the content type given.
        let head = raw_client
            .head_object()
            .bucket("steno-documents")
            .key(format!("tenant-a/{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/pdf"));

        storage
            .put(key, Bytes::from_static(b"second"), "application/pdf")
            .await
            .unwrap();
        assert_eq!(
            storage.get(key).await.unwrap(),
            Bytes::from_static(b"second")
        );

        storage.delete(key).await.unwrap();
        let error = storage.get(key).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::NotFound { key: missing } if missing == key),
            "{error:?}"
        );
        // Deleting a missing key succeeds.
        storage.delete(key).await.unwrap();
        storage.delete("firm-1/never-stored").await.unwrap();

        let error = storage
            .put("../etc/passwd", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidKey { .. }),
            "{error:?}"
        );

        let listed = raw_client
            .list_objects_v2()
            .bucket("steno-documents")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.key_count(), Some(0));
    }

    #[tokio::test]
    async fn missing_bucket_fails_check_and_names_the_bucket() {
        let emulator = AwsEmulator::start();
        let storage = S3Storage::from_sdk_config(
            &test_sdk_config(),
            settings_for(&emulator, "bucket-that-does-not-exist", None),
        )
        .unwrap();

        let error = storage.check().await.unwrap_err();
        assert!(
            matches!(&error, StorageError::S3 { operation: "HeadBucket", bucket, key: None, .. }
                if bucket == "bucket-that-does-not-exist"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("bucket-that-does-not-exist"), "{message}");
        assert!(message.contains("HeadBucket"), "{message}");

        // A missing bucket is an error for reads too, not a missing document.
        let error = storage.get("firm-1/doc").await.unwrap_err();
        assert!(
            matches!(&error, StorageError::S3 { operation: "GetObject", key: Some(key), .. }
                if key == "firm-1/doc"),
            "{error:?}"
        );
        assert!(error.to_string().contains("NoSuchBucket"), "{error}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_check() {
        let emulator = AwsEmulator::start();
        let settings = settings_for(&emulator, "steno-documents", None);
        drop(emulator);
        let storage = S3Storage::from_sdk_config(&test_sdk_config(), settings).unwrap();
        let error = storage.check().await.unwrap_err();
        assert!(
            matches!(
                &error,
                StorageError::S3 {
                    operation: "HeadBucket",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("endpoint"), "{error}");
    }
}
