# Production: the platform at the sizes of docs/requirements.md. PostgreSQL 15 Multi-AZ on
# db.t3.medium with 100 GiB (R-INFRA-6), 30 days of backups (R-DR-7), a NAT gateway per zone
# (R-INFRA-8), 512 MB and 30 s per invocation (R-INFRA-2), throttling at 1,000 burst and 500 per
# second (R-INFRA-5), 30 days of logs (R-INFRA-13), and a $1,000 monthly budget with the $100,
# $500 and $1,000 alerts (R-COST-1 to R-COST-4): the platform module's defaults.

module "platform" {
  source      = "../../modules/platform"
  environment = "production"

  package_path      = var.package_path
  database_url      = var.database_url
  steno_environment = var.steno_environment

  domain_aliases      = var.domain_aliases
  acm_certificate_arn = var.acm_certificate_arn

  notification_subscriptions  = var.notification_subscriptions
  opsd_trusted_principal_arns = var.opsd_trusted_principal_arns
}
