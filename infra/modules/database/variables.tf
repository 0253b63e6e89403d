# Inputs of the database module. The defaults are production's values from docs/requirements.md
# (R-INFRA-6, R-INFRA-7, R-DR-6); staging overrides the size, Multi-AZ and retention.

variable "identifier" {
  description = "The RDS instance identifier; opsd.yaml's databases.<name>.rds.instance. Keep it at most 44 characters so opsd's drill copies (<identifier>-drill-<12 characters>) keep the full name."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version; a major version alone (15) lets RDS apply minor upgrades."
  type        = string
  default     = "15"
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.medium"
}

variable "allocated_storage_gb" {
  description = "Initial storage in GiB."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gb" {
  description = "Upper bound of storage autoscaling in GiB."
  type        = number
  default     = 200
}

variable "database_name" {
  description = "The database created in the instance for Steno."
  type        = string
  default     = "steno"
}

variable "master_username" {
  description = "The master user; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "steno_admin"
}

variable "multi_az" {
  description = "A synchronous standby in the other zone (production, R-INFRA-6)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (30 in production, R-DR-6 and R-DR-7; 7 in staging)."
  type        = number
  default     = 30
}

variable "backup_window" {
  description = "Daily backup window, UTC (R-INFRA-7)."
  type        = string
  default     = "02:00-03:00"
}

variable "maintenance_window" {
  description = "Weekly engine maintenance window, UTC (R-INFRA-7)."
  type        = string
  default     = "sun:03:00-sun:04:00"
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
  default     = true
}

variable "slow_query_ms" {
  description = "Statements slower than this many milliseconds are logged."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Days the exported PostgreSQL logs are kept."
  type        = number
  default     = 30
}

variable "vpc_id" {
  description = "The VPC of the database subnets."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (two zones) of the DB subnet group."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (Steno's function)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for storage, snapshots, Performance Insights, the master secret and the log groups."
  type        = string
}
