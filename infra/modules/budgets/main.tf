# AWS Budgets as a backstop to opsd's own cost checks (R-COST-1 to R-COST-4 in
# docs/requirements.md): AWS sends these alerts even when opsd is down. A monthly budget warns at
# 80 % of actual spend, pages at 100 % and at a forecast of 120 %; a second budget alerts at fixed
# dollar amounts of the month's spend.

resource "aws_budgets_budget" "monthly" {
  name         = "${var.name}-monthly"
  budget_type  = "COST"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = var.cost_filter_tag == null ? [] : [var.cost_filter_tag]
    content {
      name   = "TagKeyValue"
      values = [format("user:%s$%s", cost_filter.value.key, cost_filter.value.value)]
    }
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    notification_type         = "ACTUAL"
    threshold                 = var.warning_percent
    threshold_type            = "PERCENTAGE"
    subscriber_sns_topic_arns = [var.topic_arns["warning"]]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    notification_type         = "ACTUAL"
    threshold                 = var.critical_percent
    threshold_type            = "PERCENTAGE"
    subscriber_sns_topic_arns = [var.topic_arns["critical"]]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    notification_type         = "FORECASTED"
    threshold                 = var.forecast_percent
    threshold_type            = "PERCENTAGE"
    subscriber_sns_topic_arns = [var.topic_arns["critical"]]
  }
}

resource "aws_budgets_budget" "spend_alerts" {
  count        = length(var.spend_alerts) > 0 ? 1 : 0
  name         = "${var.name}-spend-alerts"
  budget_type  = "COST"
  limit_amount = tostring(max([for alert in var.spend_alerts : alert.amount_usd]...))
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = var.cost_filter_tag == null ? [] : [var.cost_filter_tag]
    content {
      name   = "TagKeyValue"
      values = [format("user:%s$%s", cost_filter.value.key, cost_filter.value.value)]
    }
  }

  dynamic "notification" {
    for_each = var.spend_alerts
    content {
      comparison_operator       = "GREATER_THAN"
      notification_type         = "ACTUAL"
      threshold                 = notification.value.amount_usd
      threshold_type            = "ABSOLUTE_VALUE"
      subscriber_sns_topic_arns = [var.topic_arns[notification.value.severity]]
    }
  }
}
