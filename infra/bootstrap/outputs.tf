# Outputs of the bootstrap stack: the values of the environments' backend blocks.

output "state_bucket_name" {
  description = "The backend's `bucket`."
  value       = module.state.state_bucket_name
}

output "lock_table_name" {
  description = "The backend's `dynamodb_table`."
  value       = module.state.lock_table_name
}

output "kms_key_arn" {
  description = "The backend's `kms_key_id`."
  value       = module.state.kms_key_arn
}
