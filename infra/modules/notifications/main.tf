# One SNS topic per severity (critical, warning, info), the severities of opsd's alarm rules and
# notification routes (R-ROUTE-1 to R-ROUTE-3 in docs/requirements.md). opsd's synced CloudWatch
# alarms notify them (services.<name>.aws.alarm_topics), opsd publishes to them as `sns`
# notification targets, and AWS Budgets sends its backstop alerts to them. Encrypted with the
# environment's KMS key; only this account's principals, its CloudWatch alarms and its budgets may
# publish.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_sns_topic" "severity" {
  for_each          = toset(var.severities)
  name              = "${var.name}-${each.key}"
  display_name      = "Steno ${var.name} ${each.key}"
  kms_master_key_id = var.kms_key_arn
}

data "aws_iam_policy_document" "severity" {
  for_each = aws_sns_topic.severity

  statement {
    sid       = "ThisAccountsPrincipals"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"]
    resources = [each.value.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "AlarmsAndBudgetsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [each.value.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "severity" {
  for_each = aws_sns_topic.severity
  arn      = each.value.arn
  policy   = data.aws_iam_policy_document.severity[each.key].json
}

resource "aws_sns_topic_subscription" "this" {
  count     = length(var.subscriptions)
  topic_arn = aws_sns_topic.severity[var.subscriptions[count.index].severity].arn
  protocol  = var.subscriptions[count.index].protocol
  endpoint  = var.subscriptions[count.index].endpoint
}
