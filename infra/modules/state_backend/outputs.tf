# Outputs of the state_backend module.

output "state_bucket_name" {
  description = "The state bucket: `bucket` of the environments' backend blocks."
  value       = aws_s3_bucket.state.id
}

output "lock_table_name" {
  description = "The lock table: `dynamodb_table` of the environments' backend blocks."
  value       = aws_dynamodb_table.locks.name
}

output "kms_key_arn" {
  description = "The key encrypting the state (the backend's `kms_key_id`)."
  value       = aws_kms_key.state.arn
}
