# Inputs of this environment that differ between installations (the sizes are in main.tf).

variable "region" {
  description = "The environment's region (R-INFRA-1 in docs/requirements.md: us-east-1)."
  type        = string
  default     = "us-east-1"
}

variable "package_path" {
  description = "The zip of the function's first version, built with `opsd package steno` from the repository root."
  type        = string
  default     = "../../../target/lambda/steno/bootstrap.zip"
}

variable "database_url" {
  description = "Steno's DATABASE_URL: postgres://steno:PASSWORD@<database_endpoint>/steno?sslmode=require (pass it as TF_VAR_database_url)."
  type        = string
  sensitive   = true
}

variable "domain_aliases" {
  description = "Custom domain names of Steno's CloudFront distribution."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (us-east-1) for domain_aliases; null serves on the cloudfront.net name."
  type        = string
  default     = null
}

variable "notification_subscriptions" {
  description = "Who each severity topic reaches: {severity, protocol, endpoint}."
  type = list(object({
    severity = string
    protocol = string
    endpoint = string
  }))
  default = []
}

variable "opsd_trusted_principal_arns" {
  description = "IAM principals that may assume the opsd role (the identity opsd runs as)."
  type        = list(string)
  default     = []
}

variable "steno_environment" {
  description = "Further environment variables of Steno (STENO_PUBLIC_URL, STENO_ANTHROPIC_MODEL, ...)."
  type        = map(string)
  default     = {}
}
