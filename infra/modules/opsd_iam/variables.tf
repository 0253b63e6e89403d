# Inputs of the opsd_iam module: the resources opsd manages in one environment.

variable "name" {
  description = "Name of the policy (and role), e.g. opsd-steno-production."
  type        = string
}

variable "function_arn" {
  description = "Unqualified ARN of the Steno function; its versions and aliases are covered by <arn>:*."
  type        = string
}

variable "distribution_arn" {
  description = "ARN of the CloudFront distribution opsd invalidates."
  type        = string
}

variable "db_instance_id" {
  description = "The RDS instance opsd snapshots and drills (opsd.yaml's databases.<name>.rds.instance)."
  type        = string
}

variable "db_subnet_group_name" {
  description = "The instance's DB subnet group, where drill copies and restores are created."
  type        = string
}

variable "extra_restore_targets" {
  description = "Instance identifiers (or patterns with *) `opsd restore --to` may create besides <instance>-restore-*."
  type        = list(string)
  default     = []
}

variable "snapshot_prefix" {
  description = "The start of every snapshot identifier opsd takes (opsd deletes only those)."
  type        = string
  default     = "opsd-"
}

variable "alarm_prefix" {
  description = "The start of every CloudWatch alarm name opsd writes (opsd-<service>-<rule>)."
  type        = string
  default     = "opsd-"
}

variable "sns_topic_arns" {
  description = "The severity topics opsd publishes to and lets its alarms notify."
  type        = list(string)
}

variable "documents_bucket" {
  description = "Bucket of the documents opsd lists in snapshot manifests."
  type        = string
}

variable "documents_prefix" {
  description = "Key prefix of the documents (opsd.yaml's documents.s3.prefix)."
  type        = string
  default     = "documents/"
}

variable "kms_key_arn" {
  description = "The environment's KMS key (database snapshots, documents, topics)."
  type        = string
}

variable "trusted_principal_arns" {
  description = "IAM principals allowed to assume the opsd role (the instance role or the user opsd runs as); empty creates only the policy."
  type        = list(string)
  default     = []
}
