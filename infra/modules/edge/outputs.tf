# Outputs of the edge module.

output "distribution_id" {
  description = "opsd.yaml's services.<name>.aws.cloudfront.distribution_id."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN of the distribution (opsd's IAM policy is scoped to it)."
  value       = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "The distribution's cloudfront.net name (Steno's public URL without a custom domain)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "assets_bucket_name" {
  description = "The static assets bucket; files under static/ are served at /static/."
  value       = aws_s3_bucket.assets.id
}
