# Inputs of the api module. The throttling defaults are R-INFRA-5's (docs/requirements.md).

variable "name" {
  description = "Name of the REST API, its WAF and log groups, e.g. steno-production."
  type        = string
}

variable "stage_name" {
  description = "The stage; CloudFront forwards to /<stage> of the API."
  type        = string
  default     = "live"
}

variable "function_name" {
  description = "The Steno function's name."
  type        = string
}

variable "function_alias_name" {
  description = "The alias API Gateway invokes (opsd shifts its weights)."
  type        = string
}

variable "function_alias_invoke_arn" {
  description = "Invoke ARN of that alias."
  type        = string
}

variable "throttle_burst_limit" {
  description = "Requests API Gateway accepts in a burst before throttling (R-INFRA-5: 1,000)."
  type        = number
  default     = 1000
}

variable "throttle_rate_limit" {
  description = "Steady requests per second before throttling (R-INFRA-5: 500)."
  type        = number
  default     = 500
}

variable "requests_per_address_per_5_minutes" {
  description = "WAF blocks a client address above this many requests in 5 minutes."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Days the access and WAF logs are kept (R-INFRA-13: 30 in production)."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "KMS key of the log groups."
  type        = string
}
