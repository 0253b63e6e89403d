# Inputs of the encryption module.

variable "name" {
  description = "Name of the key's alias (alias/<name>), e.g. steno-production."
  type        = string
}

variable "description" {
  description = "What the key encrypts, shown in the KMS console."
  type        = string
  default     = "Steno platform data: database, documents, topics and logs"
}

variable "deletion_window_in_days" {
  description = "Days a deleted key waits before it is destroyed (7 to 30); data encrypted with it is lost after that."
  type        = number
  default     = 30
}
