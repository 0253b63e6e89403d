# The whole AWS platform of one environment, wired from the other modules: the key, the network,
# the database, the documents, the Steno function behind API Gateway and CloudFront, the severity
# topics, the budgets, and opsd's IAM policy scoped to exactly these resources. The environments
# (infra/environments/*) call this module with their own sizes.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  name       = "steno-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  # Bucket names are global: the account id keeps them unique.
  bucket_suffix = "${var.environment}-${local.account_id}"
}

module "encryption" {
  source = "../encryption"
  name   = local.name
}

module "network" {
  source                  = "../network"
  name                    = local.name
  cidr_block              = var.vpc_cidr_block
  availability_zones      = var.availability_zones
  public_subnet_cidrs     = var.public_subnet_cidrs
  private_subnet_cidrs    = var.private_subnet_cidrs
  database_subnet_cidrs   = var.database_subnet_cidrs
  nat_gateway_per_az      = var.nat_gateway_per_az
  interface_endpoints     = var.interface_endpoints
  flow_log_retention_days = var.log_retention_days
  kms_key_arn             = module.encryption.key_arn
}

module "access_logs" {
  source      = "../log_bucket"
  bucket_name = "steno-access-logs-${local.bucket_suffix}"
}

module "documents" {
  source            = "../documents"
  bucket_name       = "steno-documents-${local.bucket_suffix}"
  documents_prefix  = var.documents_prefix
  access_log_bucket = module.access_logs.bucket_name
  kms_key_arn       = module.encryption.key_arn
}

module "database" {
  source                    = "../database"
  identifier                = local.name
  instance_class            = var.db_instance_class
  allocated_storage_gb      = var.db_allocated_storage_gb
  max_allocated_storage_gb  = var.db_max_allocated_storage_gb
  multi_az                  = var.db_multi_az
  backup_retention_days     = var.db_backup_retention_days
  deletion_protection       = var.db_deletion_protection
  log_retention_days        = var.log_retention_days
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.database_subnet_ids
  client_security_group_ids = [module.function.security_group_id]
  kms_key_arn               = module.encryption.key_arn
}

module "function" {
  source                = "../function"
  function_name         = local.name
  package_path          = var.package_path
  architecture          = var.function_architecture
  memory_mb             = var.function_memory_mb
  timeout_seconds       = var.function_timeout_seconds
  reserved_concurrency  = var.function_reserved_concurrency
  log_retention_days    = var.log_retention_days
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  database_subnet_cidrs = var.database_subnet_cidrs
  database_url          = var.database_url
  documents_bucket      = module.documents.bucket_name
  documents_prefix      = module.documents.documents_prefix
  environment           = var.steno_environment
  kms_key_arn           = module.encryption.key_arn
}

module "api" {
  source                    = "../api"
  name                      = local.name
  function_name             = module.function.function_name
  function_alias_name       = module.function.alias_name
  function_alias_invoke_arn = module.function.alias_invoke_arn
  throttle_burst_limit      = var.api_throttle_burst_limit
  throttle_rate_limit       = var.api_throttle_rate_limit
  log_retention_days        = var.log_retention_days
  kms_key_arn               = module.encryption.key_arn
}

module "edge" {
  source                 = "../edge"
  name                   = local.name
  api_origin_domain_name = module.api.origin_domain_name
  api_stage_name         = module.api.stage_name
  assets_bucket_name     = "steno-assets-${local.bucket_suffix}"
  aliases                = var.domain_aliases
  acm_certificate_arn    = var.acm_certificate_arn
  access_log_bucket      = module.access_logs.bucket_name
}

module "notifications" {
  source        = "../notifications"
  name          = local.name
  subscriptions = var.notification_subscriptions
  kms_key_arn   = module.encryption.key_arn
}

module "budgets" {
  source             = "../budgets"
  name               = local.name
  monthly_budget_usd = var.monthly_budget_usd
  spend_alerts       = var.spend_alerts
  cost_filter_tag    = var.budget_cost_filter_tag
  topic_arns         = module.notifications.topic_arns
}

module "opsd_iam" {
  source                 = "../opsd_iam"
  name                   = "opsd-${local.name}"
  function_arn           = module.function.function_arn
  distribution_arn       = module.edge.distribution_arn
  db_instance_id         = module.database.instance_id
  db_subnet_group_name   = module.database.subnet_group_name
  extra_restore_targets  = var.opsd_extra_restore_targets
  sns_topic_arns         = values(module.notifications.topic_arns)
  documents_bucket       = module.documents.bucket_name
  documents_prefix       = module.documents.documents_prefix
  kms_key_arn            = module.encryption.key_arn
  trusted_principal_arns = var.opsd_trusted_principal_arns
}
