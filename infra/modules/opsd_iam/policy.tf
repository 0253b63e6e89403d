# opsd's IAM policy: exactly the AWS operations opsd's code calls, each scoped to what opsd
# manages. The Rust test opsd/src/iam_policy_tests.rs reads the `actions` lists of this file and
# fails on an action opsd calls that is not granted here, and on one granted that opsd never calls,
# so keep every action a literal "service:Action" string in an `actions` list of this file.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  rds       = "arn:${local.partition}:rds:${local.region}:${local.account}"
  instance  = lower(var.db_instance_id)
  bucket    = "arn:${local.partition}:s3:::${var.documents_bucket}"
  # Where opsd keeps a snapshot's copies of documents when the bucket is not versioned.
  snapshot_copies = "opsd-snapshots/"

  drill_copies   = "${local.rds}:db:${local.instance}-drill-*"
  restore_copies = concat(["${local.rds}:db:${local.instance}-restore-*"], [for name in var.extra_restore_targets : "${local.rds}:db:${lower(name)}"])
  opsd_snapshots = "${local.rds}:snapshot:${var.snapshot_prefix}*"
}

data "aws_iam_policy_document" "opsd" {
  # Releases: read and move the alias, publish versions from a package (R-INFRA-3).
  statement {
    sid = "StenoFunctionReleases"
    actions = [
      "lambda:GetAlias",
      "lambda:UpdateAlias",
      "lambda:GetFunctionConfiguration",
      "lambda:UpdateFunctionConfiguration",
      "lambda:UpdateFunctionCode",
      "lambda:PublishVersion",
      "lambda:ListVersionsByFunction",
    ]
    resources = [var.function_arn, "${var.function_arn}:*"]
  }

  # Alarm rules synced as CloudWatch alarms; opsd only writes alarms named opsd-<service>-...
  # (R-ALARM-11), and they may notify only the severity topics.
  statement {
    sid       = "SyncOwnedAlarms"
    actions   = ["cloudwatch:PutMetricAlarm"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:${var.alarm_prefix}*"]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "cloudwatch:AlarmActions"
      values   = var.sns_topic_arns
    }
  }

  statement {
    sid       = "DeleteOwnedAlarms"
    actions   = ["cloudwatch:DeleteAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:${var.alarm_prefix}*"]
  }

  # Alarm states: opsd's own alarms and those opsd.yaml lists in aws.rollback_alarms.
  statement {
    sid       = "ReadAlarmStates"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:*"]
  }

  # GetMetricData takes no resource narrower than "*".
  statement {
    sid       = "ReadMetrics"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  # Cost Explorer takes no resource narrower than "*".
  statement {
    sid       = "ReadDailyCosts"
    actions   = ["ce:GetCostAndUsage"]
    resources = ["*"]
  }

  statement {
    sid       = "InvalidateTheDistribution"
    actions   = ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"]
    resources = [var.distribution_arn]
  }

  # Drills and restores (R-DR-1, R-DR-13): look up instances and snapshots of this region.
  statement {
    sid       = "DescribeInstancesAndSnapshots"
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBSnapshots"]
    resources = ["${local.rds}:db:*", "${local.rds}:snapshot:*"]
  }

  statement {
    sid       = "SnapshotTheInstance"
    actions   = ["rds:CreateDBSnapshot"]
    resources = ["${local.rds}:db:${local.instance}", local.opsd_snapshots]
  }

  # Retention deletes only the snapshots opsd took.
  statement {
    sid       = "DeleteOwnSnapshots"
    actions   = ["rds:DeleteDBSnapshot"]
    resources = [local.opsd_snapshots]
  }

  # A drill copy <instance>-drill-<id> or a restore <instance>-restore-<id>, from opsd's snapshots or
  # the instance's automated ones, in the instance's DB subnet group with the default option and
  # parameter groups RDS gives a restored instance.
  statement {
    sid     = "RestoreDrillCopiesAndRestores"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot"]
    resources = concat([local.drill_copies, local.opsd_snapshots], local.restore_copies, [
      "${local.rds}:snapshot:rds:${local.instance}-*",
      "${local.rds}:subgrp:${var.db_subnet_group_name}",
      "${local.rds}:og:default:*",
      "${local.rds}:pg:default.*",
    ])
  }

  # opsd tags every snapshot and instance it creates (managed-by=opsd).
  statement {
    sid       = "TagWhatOpsdCreates"
    actions   = ["rds:AddTagsToResource"]
    resources = concat([local.drill_copies, local.opsd_snapshots], local.restore_copies)
  }

  statement {
    sid       = "DropDrillCopies"
    actions   = ["rds:DeleteDBInstance"]
    resources = [local.drill_copies]
  }

  # A restored instance is encrypted with the snapshot's key: RDS creates a grant on it on opsd's
  # behalf.
  statement {
    sid       = "KeyGrantsForRestoredInstances"
    actions   = ["kms:CreateGrant"]
    resources = [var.kms_key_arn]
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DescribeKeyThroughRds"
    actions   = ["kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.amazonaws.com"]
    }
  }

  # Documents and topics are encrypted with the key: reading, copying and publishing use it
  # through S3 and SNS only.
  statement {
    sid       = "KeyThroughS3AndSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "PublishToSeverityTopics"
    actions   = ["sns:Publish"]
    resources = var.sns_topic_arns
  }

  # The document store in the backup: list and read the documents, keep and remove a snapshot's
  # copies (only in an unversioned bucket).
  statement {
    sid       = "ListDocumentsAndSnapshotCopies"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.documents_prefix}*", "${local.snapshot_copies}*"]
    }
  }

  statement {
    sid       = "ReadDocuments"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket}/${var.documents_prefix}*"]
  }

  statement {
    sid       = "WriteAndRemoveSnapshotCopies"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket}/${local.snapshot_copies}*"]
  }
}
