# Inputs of the edge module. The cache lifetimes are R-INFRA-9's (docs/requirements.md).

variable "name" {
  description = "Name prefix of the distribution's policies, e.g. steno-production."
  type        = string
}

variable "api_origin_domain_name" {
  description = "Host name of the API Gateway REST API (modules/api's origin_domain_name)."
  type        = string
}

variable "api_stage_name" {
  description = "The API stage requests are forwarded to."
  type        = string
}

variable "assets_bucket_name" {
  description = "Name of the static assets bucket (globally unique)."
  type        = string
}

variable "assets_default_ttl_seconds" {
  description = "How long CloudFront keeps an asset without caching headers (R-INFRA-9: 1 day)."
  type        = number
  default     = 86400
}

variable "assets_max_ttl_seconds" {
  description = "The longest CloudFront keeps an asset (R-INFRA-9: 1 year)."
  type        = number
  default     = 31536000
}

variable "old_version_days" {
  description = "Days an overwritten asset's old version is kept."
  type        = number
  default     = 90
}

variable "aliases" {
  description = "Custom domain names of the distribution (need acm_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate in us-east-1 for the aliases; null serves on the cloudfront.net name."
  type        = string
  default     = null
}

variable "price_class" {
  description = "CloudFront edge locations used (PriceClass_100: North America and Europe)."
  type        = string
  default     = "PriceClass_100"
}

variable "access_log_bucket" {
  description = "Bucket receiving the assets bucket's server access logs."
  type        = string
}
