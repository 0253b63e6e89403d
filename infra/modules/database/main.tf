# Steno's database: RDS PostgreSQL 15 (R-INFRA-6 in docs/requirements.md), encrypted with the
# environment's KMS key, in the database subnets, with automated backups and point-in-time
# recovery (R-DR-7), the backup and maintenance windows of R-INFRA-7, and its master password kept
# by RDS in Secrets Manager. opsd snapshots it and restores its drill copies
# (<identifier>-drill-<id>) and restores (<identifier>-restore-<id>) into the same DB subnet group
# and security group; modules/opsd_iam grants exactly that.

data "aws_partition" "current" {}

locals {
  major_version = split(".", var.engine_version)[0]
}

resource "aws_db_subnet_group" "this" {
  name        = "${var.identifier}-database"
  description = "Database subnets of ${var.identifier}, its drill copies and restores"
  subnet_ids  = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.identifier}-database"
  description = "PostgreSQL from Steno's function to ${var.identifier} (and its drill copies)"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.identifier}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from a client security group"
  referenced_security_group_id = var.client_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_parameter_group" "this" {
  name        = "${var.identifier}-postgres${local.major_version}"
  family      = "postgres${local.major_version}"
  description = "TLS only, statement and slow-query logging for ${var.identifier}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.slow_query_ms)
  }
}

# Created here so that the exported logs are encrypted and expire.
resource "aws_cloudwatch_log_group" "exports" {
  #checkov:skip=CKV_AWS_338:retention follows R-INFRA-13 in docs/requirements.md (30 days in production), set per environment
  for_each          = toset(["postgresql", "upgrade"])
  name              = "/aws/rds/instance/${var.identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.identifier}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:multi_az is set per environment: on in production (R-INFRA-6, R-DR-9), off in the scaled-down staging copy
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = var.database_name
  username       = var.master_username
  port           = 5432

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false

  backup_retention_period   = var.backup_retention_days
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.identifier}-final"

  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = var.kms_key_arn

  depends_on = [aws_cloudwatch_log_group.exports]
}
