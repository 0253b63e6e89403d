# Inputs of the function module. Memory and timeout are R-INFRA-2's (docs/requirements.md).

variable "function_name" {
  description = "The Lambda function's name: opsd.yaml's services.<name>.aws.function_name."
  type        = string
}

variable "alias_name" {
  description = "The alias API Gateway invokes and opsd shifts: opsd.yaml's services.<name>.aws.alias."
  type        = string
  default     = "live"
}

variable "package_path" {
  description = "The zip of the first version, built by `opsd package steno` (target/lambda/steno/bootstrap.zip); later releases are published by opsd."
  type        = string
}

variable "architecture" {
  description = "The function's CPU architecture, as `opsd package steno` prints it (x86_64 or arm64)."
  type        = string
  default     = "x86_64"
}

variable "memory_mb" {
  description = "Memory of the function in MB (R-INFRA-2: 512)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Timeout of one invocation in seconds (R-INFRA-2: 30)."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and the most allowed to) the function, within the account's 1,000 (R-INFRA-4)."
  type        = number
  default     = 300
}

variable "log_retention_days" {
  description = "Days the function's logs are kept (R-INFRA-13: 30 in production)."
  type        = number
  default     = 30
}

variable "vpc_id" {
  description = "The VPC the function runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function's network interfaces are placed in."
  type        = list(string)
}

variable "database_subnet_cidrs" {
  description = "Database subnets the function may reach on 5432."
  type        = list(string)
}

variable "database_url" {
  description = "Steno's DATABASE_URL (postgres://user:password@host:5432/steno?sslmode=require), kept in the function's environment."
  type        = string
  sensitive   = true
}

variable "documents_bucket" {
  description = "Bucket of Steno's documents (STENO_S3_BUCKET)."
  type        = string
}

variable "documents_prefix" {
  description = "Key prefix of Steno's documents in the bucket (STENO_S3_PREFIX)."
  type        = string
  default     = "documents/"
}

variable "environment" {
  description = "Further environment variables of Steno (STENO_PUBLIC_URL, STENO_ANTHROPIC_MODEL, ...); see Steno's configuration in the README."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key of the log group and of the documents bucket."
  type        = string
}
