# Outputs of the function module.

output "function_name" {
  description = "opsd.yaml's services.<name>.aws.function_name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Unqualified ARN of the function (opsd's IAM policy adds :* for versions and aliases)."
  value       = aws_lambda_function.this.arn
}

output "alias_name" {
  description = "opsd.yaml's services.<name>.aws.alias."
  value       = aws_lambda_alias.live.name
}

output "alias_arn" {
  description = "ARN of the alias."
  value       = aws_lambda_alias.live.arn
}

output "alias_invoke_arn" {
  description = "Invoke ARN of the alias, for API Gateway's integration."
  value       = aws_lambda_alias.live.invoke_arn
}

output "security_group_id" {
  description = "Security group of the function (the database admits it)."
  value       = aws_security_group.this.id
}

output "role_arn" {
  description = "The function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}
