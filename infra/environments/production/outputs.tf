# Outputs of this environment; `terraform output -raw opsd_yaml` prints the opsd.yaml fields.

output "region" {
  description = "opsd.yaml's services.steno.aws.region (and the RDS and documents regions)."
  value       = module.platform.region
}

output "function_name" {
  description = "opsd.yaml's services.steno.aws.function_name."
  value       = module.platform.function_name
}

output "function_alias" {
  description = "opsd.yaml's services.steno.aws.alias."
  value       = module.platform.function_alias
}

output "rds_instance_id" {
  description = "opsd.yaml's databases.steno.rds.instance and services.steno.aws.database_instance."
  value       = module.platform.rds_instance_id
}

output "database_endpoint" {
  description = "host:port of the database, for DATABASE_URL."
  value       = module.platform.database_endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret with the master user's password."
  value       = module.platform.database_master_secret_arn
}

output "documents_bucket" {
  description = "opsd.yaml's databases.steno.documents.s3.bucket."
  value       = module.platform.documents_bucket
}

output "documents_prefix" {
  description = "opsd.yaml's databases.steno.documents.s3.prefix."
  value       = module.platform.documents_prefix
}

output "cloudfront_distribution_id" {
  description = "opsd.yaml's services.steno.aws.cloudfront.distribution_id."
  value       = module.platform.cloudfront_distribution_id
}

output "public_url" {
  description = "Steno's address."
  value       = module.platform.public_url
}

output "assets_bucket" {
  description = "Bucket of the static assets served at /static/."
  value       = module.platform.assets_bucket
}

output "sns_topic_arns" {
  description = "opsd.yaml's services.steno.aws.alarm_topics and the sns notification targets."
  value       = module.platform.sns_topic_arns
}

output "opsd_policy_arn" {
  description = "opsd's least-privilege policy."
  value       = module.platform.opsd_policy_arn
}

output "opsd_role_arn" {
  description = "The role opsd assumes (null without trusted principals)."
  value       = module.platform.opsd_role_arn
}

output "opsd_yaml" {
  description = "The opsd.yaml fields of this environment, as YAML."
  value       = module.platform.opsd_yaml
}
