# Staging: the production platform scaled down (R-INFRA-11 in docs/requirements.md). A smaller
# single-AZ database with 7 days of backups, one NAT gateway, no interface endpoints, 7 days of
# logs, less reserved concurrency, and a budget that counts only costs tagged Environment=staging
# (staging may share its account).

module "platform" {
  source      = "../../modules/platform"
  environment = "staging"

  nat_gateway_per_az  = false
  interface_endpoints = []
  log_retention_days  = 7

  db_instance_class           = "db.t3.micro"
  db_allocated_storage_gb     = 20
  db_max_allocated_storage_gb = 50
  db_multi_az                 = false
  db_backup_retention_days    = 7

  package_path                  = var.package_path
  function_reserved_concurrency = 25
  database_url                  = var.database_url
  steno_environment             = var.steno_environment

  domain_aliases      = var.domain_aliases
  acm_certificate_arn = var.acm_certificate_arn

  notification_subscriptions = var.notification_subscriptions
  monthly_budget_usd         = 100
  spend_alerts               = []
  budget_cost_filter_tag     = { key = "Environment", value = "staging" }

  opsd_trusted_principal_arns = var.opsd_trusted_principal_arns
}
