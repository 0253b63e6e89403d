# Inputs of the platform module. Defaults are production's values from docs/requirements.md;
# infra/environments/staging overrides what it scales down.

variable "environment" {
  description = "The environment's name (staging or production); resources are named steno-<environment>."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's address range (R-INFRA-8)."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "The two zones of the subnets (R-INFRA-8)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "public_subnet_cidrs" {
  description = "Public subnets, one per zone (R-INFRA-8)."
  type        = list(string)
  default     = ["10.0.101.0/24", "10.0.102.0/24"]
}

variable "private_subnet_cidrs" {
  description = "Private subnets, one per zone (R-INFRA-8)."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]
}

variable "database_subnet_cidrs" {
  description = "Database subnets, one per zone (R-INFRA-8)."
  type        = list(string)
  default     = ["10.0.201.0/24", "10.0.202.0/24"]
}

variable "nat_gateway_per_az" {
  description = "A NAT gateway in each zone (R-INFRA-8) rather than one shared."
  type        = bool
  default     = true
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints from the private subnets."
  type        = list(string)
  default     = ["lambda", "monitoring", "rds", "sns"]
}

variable "log_retention_days" {
  description = "Days every log group keeps its logs (R-INFRA-13: 30 in production)."
  type        = number
  default     = 30
}

variable "documents_prefix" {
  description = "Key prefix of Steno's documents in the documents bucket."
  type        = string
  default     = "documents/"
}

variable "db_instance_class" {
  description = "RDS instance class (R-INFRA-6: db.t3.medium)."
  type        = string
  default     = "db.t3.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial database storage in GiB (R-INFRA-6: 100)."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage_gb" {
  description = "Upper bound of storage autoscaling in GiB."
  type        = number
  default     = 200
}

variable "db_multi_az" {
  description = "A standby in the other zone (R-INFRA-6, R-DR-9)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (R-DR-7: 30)."
  type        = number
  default     = 30
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database until this is turned off."
  type        = bool
  default     = true
}

variable "package_path" {
  description = "The zip of the function's first version (`opsd package steno`)."
  type        = string
}

variable "function_architecture" {
  description = "The function's architecture, as `opsd package steno` prints it."
  type        = string
  default     = "x86_64"
}

variable "function_memory_mb" {
  description = "Memory of the function in MB (R-INFRA-2: 512)."
  type        = number
  default     = 512
}

variable "function_timeout_seconds" {
  description = "Timeout of one invocation in seconds (R-INFRA-2: 30)."
  type        = number
  default     = 30
}

variable "function_reserved_concurrency" {
  description = "Concurrent executions reserved for the function (R-INFRA-4: within the account's 1,000)."
  type        = number
  default     = 300
}

variable "database_url" {
  description = "Steno's DATABASE_URL, kept in the function's environment."
  type        = string
  sensitive   = true
}

variable "steno_environment" {
  description = "Further environment variables of Steno (STENO_PUBLIC_URL, STENO_ANTHROPIC_MODEL, ...)."
  type        = map(string)
  default     = {}
}

variable "api_throttle_burst_limit" {
  description = "API Gateway burst limit (R-INFRA-5: 1,000)."
  type        = number
  default     = 1000
}

variable "api_throttle_rate_limit" {
  description = "API Gateway steady requests per second (R-INFRA-5: 500)."
  type        = number
  default     = 500
}

variable "domain_aliases" {
  description = "Custom domain names of the CloudFront distribution."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (us-east-1) for domain_aliases; null uses the cloudfront.net name."
  type        = string
  default     = null
}

variable "notification_subscriptions" {
  description = "Subscriptions of the severity topics: {severity, protocol, endpoint}."
  type = list(object({
    severity = string
    protocol = string
    endpoint = string
  }))
  default = []
}

variable "monthly_budget_usd" {
  description = "The month's budget in US dollars (R-COST-1: 1,000)."
  type        = number
  default     = 1000
}

variable "spend_alerts" {
  description = "Fixed month-to-date amounts that alert, each to a severity's topic."
  type = list(object({
    amount_usd = number
    severity   = string
  }))
  default = [
    { amount_usd = 100, severity = "info" },
    { amount_usd = 500, severity = "warning" },
    { amount_usd = 1000, severity = "critical" },
  ]
}

variable "budget_cost_filter_tag" {
  description = "Count only costs with this tag ({key, value}) in a shared account; null counts the whole account."
  type = object({
    key   = string
    value = string
  })
  default = null
}

variable "opsd_extra_restore_targets" {
  description = "Instance identifiers `opsd restore --to` may create besides <instance>-restore-*."
  type        = list(string)
  default     = []
}

variable "opsd_trusted_principal_arns" {
  description = "IAM principals that may assume the opsd role; empty creates only the policy."
  type        = list(string)
  default     = []
}
