# Inputs of the bootstrap stack. The names must match the environments' backend blocks.

variable "region" {
  description = "Region of the state bucket and lock table (R-INFRA-1 in docs/requirements.md: us-east-1)."
  type        = string
  default     = "us-east-1"
}

variable "state_bucket_name" {
  description = "Name of the state bucket (globally unique): steno-terraform-state-staging in the staging account, steno-terraform-state-production in the production account."
  type        = string
}

variable "lock_table_name" {
  description = "Name of the DynamoDB lock table."
  type        = string
  default     = "steno-terraform-locks"
}
