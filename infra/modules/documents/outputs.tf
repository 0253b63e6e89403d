# Outputs of the documents module.

output "bucket_name" {
  description = "opsd.yaml's databases.<name>.documents.s3.bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the documents bucket."
  value       = aws_s3_bucket.this.arn
}

output "documents_prefix" {
  description = "opsd.yaml's databases.<name>.documents.s3.prefix."
  value       = var.documents_prefix
}
