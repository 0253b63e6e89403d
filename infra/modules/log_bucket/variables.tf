# Inputs of the log_bucket module.

variable "bucket_name" {
  description = "Name of the access-log bucket (globally unique)."
  type        = string
}

variable "retention_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 90
}
