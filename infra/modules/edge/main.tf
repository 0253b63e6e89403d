# The edge (R-INFRA-9 in docs/requirements.md): one CloudFront distribution in front of Steno.
# Everything goes to the API stage uncached (answers are per user), except /static/*, which is
# served from the private assets bucket through Origin Access Control and cached a day by default,
# a year at most. opsd invalidates the distribution after every promotion (R-WATCH-3), so its id
# is opsd.yaml's services.<name>.aws.cloudfront.distribution_id.

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

data "aws_cloudfront_response_headers_policy" "security_headers" {
  name = "Managed-SecurityHeadersPolicy"
}

resource "aws_cloudfront_cache_policy" "assets" {
  name        = "${var.name}-assets"
  comment     = "Static assets: 1 day by default, 1 year at most"
  default_ttl = var.assets_default_ttl_seconds
  max_ttl     = var.assets_max_ttl_seconds
  min_ttl     = 0

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_origin_access_control" "assets" {
  name                              = "${var.name}-assets"
  description                       = "CloudFront reads ${var.assets_bucket_name}"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

locals {
  api_origin    = "steno-api"
  assets_origin = "steno-assets"
  custom_cert   = var.acm_certificate_arn != null
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV2_AWS_47:no WAF is attached to the distribution; the API stage's WAF (modules/api) has the known-bad-inputs rules (Log4j)
  #checkov:skip=CKV_AWS_68:the WAF sits on the API stage (modules/api), which every uncached request reaches; static assets are public files
  #checkov:skip=CKV_AWS_86:CloudFront's standard logs need a bucket with ACLs, and every bucket here is owner-enforced without ACLs; requests are in the API's access log and CloudFront's metrics
  #checkov:skip=CKV_AWS_310:there is one API and one assets bucket per environment; a second region's origins wait for R-DR-11 in docs/requirements.md (planned)
  #checkov:skip=CKV_AWS_174:with acm_certificate_arn set the minimum is TLSv1.2_2021; without a custom domain CloudFront's default certificate cannot be given a minimum
  #checkov:skip=CKV2_AWS_42:a custom certificate comes with the custom domain (acm_certificate_arn, aliases), set per environment
  #checkov:skip=CKV_AWS_374:Steno's users are law firms wherever they work; no country is excluded
  #checkov:skip=CKV_AWS_305:the root path is Steno's own (it redirects to /app); there is no default object
  enabled         = true
  is_ipv6_enabled = true
  comment         = "Steno ${var.name}"
  aliases         = var.aliases
  price_class     = var.price_class
  http_version    = "http2and3"

  origin {
    origin_id   = local.api_origin
    domain_name = var.api_origin_domain_name
    origin_path = "/${var.api_stage_name}"
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  origin {
    origin_id                = local.assets_origin
    domain_name              = aws_s3_bucket.assets.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.assets.id
  }

  default_cache_behavior {
    target_origin_id         = local.api_origin
    viewer_protocol_policy   = "redirect-to-https"
    allowed_methods          = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    compress                 = true
  }

  ordered_cache_behavior {
    path_pattern               = "/static/*"
    target_origin_id           = local.assets_origin
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.assets.id
    response_headers_policy_id = data.aws_cloudfront_response_headers_policy.security_headers.id
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_cert
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = local.custom_cert ? "sni-only" : null
    minimum_protocol_version       = local.custom_cert ? "TLSv1.2_2021" : "TLSv1"
  }
}
