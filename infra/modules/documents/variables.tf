# Inputs of the documents module. The lifecycle defaults are R-INFRA-10's and R-DR-10's
# (docs/requirements.md).

variable "bucket_name" {
  description = "Name of the documents bucket (globally unique): opsd.yaml's databases.<name>.documents.s3.bucket and Steno's STENO_S3_BUCKET."
  type        = string
}

variable "documents_prefix" {
  description = "Key prefix of Steno's documents: opsd.yaml's documents.s3.prefix and Steno's STENO_S3_PREFIX."
  type        = string
  default     = "documents/"
}

variable "archive_after_days" {
  description = "Days before a document moves to Glacier Instant Retrieval (still readable at once)."
  type        = number
  default     = 90
}

variable "old_version_days" {
  description = "Days an overwritten or deleted document's old version is kept."
  type        = number
  default     = 90
}

variable "access_log_bucket" {
  description = "Bucket receiving this bucket's server access logs."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the documents."
  type        = string
}
