# Inputs of the state_backend module.

variable "state_bucket_name" {
  description = "Name of the state bucket (globally unique); the environments' backend blocks name it."
  type        = string
}

variable "lock_table_name" {
  description = "Name of the DynamoDB lock table; the environments' backend blocks name it."
  type        = string
  default     = "steno-terraform-locks"
}

variable "old_state_version_days" {
  description = "Days a replaced state version is kept (to recover from a bad apply)."
  type        = number
  default     = 365
}

variable "access_log_bucket" {
  description = "Bucket receiving the state bucket's server access logs."
  type        = string
}
