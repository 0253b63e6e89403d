# Outputs of the budgets module.

output "monthly_budget_name" {
  description = "Name of the monthly budget."
  value       = aws_budgets_budget.monthly.name
}

output "spend_alerts_budget_name" {
  description = "Name of the fixed-amount alerts budget (null without alerts)."
  value       = length(aws_budgets_budget.spend_alerts) > 0 ? aws_budgets_budget.spend_alerts[0].name : null
}
