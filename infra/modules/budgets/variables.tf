# Inputs of the budgets module. The defaults are R-COST-1 to R-COST-4 (docs/requirements.md); the
# fixed alerts are the $100, $500 and $1,000 billing alerts that R-COST-1 lists among the guides'
# figures.

variable "name" {
  description = "Name prefix of the budgets, e.g. steno-production."
  type        = string
}

variable "monthly_budget_usd" {
  description = "The month's budget in US dollars (R-COST-1: 1,000); the same amount as opsd.yaml's costs.budgets."
  type        = number
  default     = 1000
}

variable "warning_percent" {
  description = "Actual spend, in percent of the budget, that warns (R-COST-2: 80)."
  type        = number
  default     = 80
}

variable "critical_percent" {
  description = "Actual spend, in percent of the budget, that pages (R-COST-3: 100)."
  type        = number
  default     = 100
}

variable "forecast_percent" {
  description = "Forecast month-end spend, in percent of the budget, that pages (R-COST-4: 120)."
  type        = number
  default     = 120
}

variable "spend_alerts" {
  description = "Fixed month-to-date amounts that alert, each to a severity's topic."
  type = list(object({
    amount_usd = number
    severity   = string
  }))
  default = [
    { amount_usd = 100, severity = "info" },
    { amount_usd = 500, severity = "warning" },
    { amount_usd = 1000, severity = "critical" },
  ]
}

variable "cost_filter_tag" {
  description = "Count only costs with this tag ({key, value}, an activated cost allocation tag) when the account is shared; null counts the whole account."
  type = object({
    key   = string
    value = string
  })
  default = null
}

variable "topic_arns" {
  description = "SNS topic ARN of each severity (modules/notifications' topic_arns)."
  type        = map(string)
}
