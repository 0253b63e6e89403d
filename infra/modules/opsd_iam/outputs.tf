# Outputs of the opsd_iam module.

output "policy_arn" {
  description = "ARN of opsd's managed policy, to attach to the identity opsd runs as."
  value       = aws_iam_policy.opsd.arn
}

output "policy_json" {
  description = "The policy document, for review."
  value       = data.aws_iam_policy_document.opsd.json
}

output "role_arn" {
  description = "The opsd role (null when no trusted principals are given)."
  value       = length(aws_iam_role.opsd) > 0 ? aws_iam_role.opsd[0].arn : null
}
