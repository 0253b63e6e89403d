# Inputs of the notifications module.

variable "name" {
  description = "Name prefix of the topics (<name>-critical, <name>-warning, <name>-info)."
  type        = string
}

variable "severities" {
  description = "The severities that get a topic, as opsd names them."
  type        = list(string)
  default     = ["critical", "warning", "info"]
}

variable "subscriptions" {
  description = "Who each severity reaches: {severity, protocol (https, email, ...), endpoint}. A pager's HTTPS endpoint on critical, team chat on warning."
  type = list(object({
    severity = string
    protocol = string
    endpoint = string
  }))
  default = []
}

variable "kms_key_arn" {
  description = "KMS key encrypting the topics (its policy lets CloudWatch and AWS Budgets use it)."
  type        = string
}
