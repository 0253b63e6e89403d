# The opsd.yaml fields this environment's outputs fill in, rendered as YAML to paste into the
# opsd.yaml of the opsd that deploys this environment (README.md in infra/ maps each field).

locals {
  region = data.aws_region.current.name
  topics = module.notifications.topic_arns

  opsd_yaml = yamlencode({
    services = {
      steno = {
        platform = "aws"
        database = "steno"
        aws = {
          region            = local.region
          function_name     = module.function.function_name
          alias             = module.function.alias_name
          database_instance = module.database.instance_id
          alarm_topics      = local.topics
          cloudfront        = { distribution_id = module.edge.distribution_id, paths = ["/*"] }
        }
      }
    }
    databases = {
      steno = {
        kind = "rds"
        rds  = { region = local.region, instance = module.database.instance_id }
        documents = {
          s3 = { bucket = module.documents.bucket_name, prefix = module.documents.documents_prefix, region = local.region }
        }
      }
    }
    costs = {
      source  = "aws"
      aws     = { region = "us-east-1" }
      budgets = [{ name = "monthly", amount_usd = var.monthly_budget_usd }]
    }
    notifications = {
      targets = [for severity, arn in local.topics : { name = "sns-${severity}", kind = "sns", topic_arn = arn }]
      routes = [
        { min_severity = "info", targets = ["sns-info"] },
        { min_severity = "warning", targets = ["sns-warning"] },
        { min_severity = "critical", targets = ["sns-critical"] },
      ]
    }
  })
}
