# Outputs of the platform module: what opsd.yaml and the operators need.

output "region" {
  description = "opsd.yaml's services.<name>.aws.region, databases.<name>.rds.region and documents.s3.region."
  value       = data.aws_region.current.name
}

output "function_name" {
  description = "opsd.yaml's services.<name>.aws.function_name."
  value       = module.function.function_name
}

output "function_alias" {
  description = "opsd.yaml's services.<name>.aws.alias."
  value       = module.function.alias_name
}

output "rds_instance_id" {
  description = "opsd.yaml's databases.<name>.rds.instance and services.<name>.aws.database_instance."
  value       = module.database.instance_id
}

output "database_endpoint" {
  description = "host:port of the database, for Steno's DATABASE_URL."
  value       = module.database.endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret with the database master user's password."
  value       = module.database.master_user_secret_arn
}

output "documents_bucket" {
  description = "opsd.yaml's databases.<name>.documents.s3.bucket."
  value       = module.documents.bucket_name
}

output "documents_prefix" {
  description = "opsd.yaml's databases.<name>.documents.s3.prefix."
  value       = module.documents.documents_prefix
}

output "cloudfront_distribution_id" {
  description = "opsd.yaml's services.<name>.aws.cloudfront.distribution_id."
  value       = module.edge.distribution_id
}

output "public_url" {
  description = "Steno's address through CloudFront."
  value       = "https://${module.edge.domain_name}"
}

output "assets_bucket" {
  description = "Bucket of the static assets served at /static/."
  value       = module.edge.assets_bucket_name
}

output "sns_topic_arns" {
  description = "opsd.yaml's services.<name>.aws.alarm_topics.<severity> and the topic_arn of sns notification targets."
  value       = module.notifications.topic_arns
}

output "opsd_policy_arn" {
  description = "opsd's least-privilege managed policy."
  value       = module.opsd_iam.policy_arn
}

output "opsd_role_arn" {
  description = "The role opsd assumes (null without trusted principals)."
  value       = module.opsd_iam.role_arn
}

output "opsd_yaml" {
  description = "The opsd.yaml fields these outputs fill in, as YAML."
  value       = local.opsd_yaml
}
