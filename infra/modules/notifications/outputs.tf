# Outputs of the notifications module.

output "topic_arns" {
  description = "Topic ARN of each severity: opsd.yaml's services.<name>.aws.alarm_topics.<severity>, and the topic_arn of `sns` notification targets."
  value       = { for severity, topic in aws_sns_topic.severity : severity => topic.arn }
}
