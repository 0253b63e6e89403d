# The Steno function (R-INFRA-2, R-INFRA-3 in docs/requirements.md): Steno's `bootstrap` binary on
# the provided.al2023 runtime, in the private subnets, behind the alias `live` that API Gateway
# invokes. Terraform creates the function, its first version and the alias; after that opsd owns
# the code, the published versions and the alias's version and routing weights (a rollout is
# UpdateAlias), so Terraform ignores those attributes.

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:retention follows R-INFRA-13 in docs/requirements.md (30 days in production), set per environment
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "this" {
  name        = var.function_name
  description = "The Steno function: HTTPS out (AWS APIs, the AI provider) and PostgreSQL to the database subnets"
  vpc_id      = var.vpc_id
  tags        = { Name = var.function_name }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS APIs and the AI provider"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  count             = length(var.database_subnet_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "PostgreSQL to a database subnet"
  cidr_ipv4         = var.database_subnet_cidrs[count.index]
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:invoked synchronously by API Gateway only; a failed request is answered to its client, there is no event to keep in a dead-letter queue
  #checkov:skip=CKV_AWS_272:releases are zips built by `opsd package steno` and published by opsd; AWS Signer profiles are not part of this platform
  #checkov:skip=CKV_AWS_173:the environment is encrypted at rest with Lambda's own key; opsd reads and rewrites it when it publishes a release with --env, which a customer key would require opsd to hold decrypt and encrypt grants for
  function_name                  = var.function_name
  description                    = "Steno, the demand letter generator"
  role                           = aws_iam_role.this.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.package_path
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  publish                        = true

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = merge(var.environment, {
      DATABASE_URL    = var.database_url
      STENO_S3_BUCKET = var.documents_bucket
      STENO_S3_PREFIX = var.documents_prefix
      STENO_DATA_DIR  = "/tmp/steno-data"
    })
  }

  lifecycle {
    # opsd publishes new code (UpdateFunctionCode, PublishVersion) for every release.
    ignore_changes = [filename, source_code_hash]
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_alias" "live" {
  name             = var.alias_name
  description      = "Steno's live traffic; opsd moves it between versions"
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version

  lifecycle {
    # opsd's rollouts write the version, the routing weights and their marker in the description.
    ignore_changes = [function_version, routing_config, description]
  }
}
