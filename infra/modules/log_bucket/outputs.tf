# Outputs of the log_bucket module.

output "bucket_name" {
  description = "The access-log bucket, target of the other buckets' logging."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the access-log bucket."
  value       = aws_s3_bucket.this.arn
}
