# Outputs of the api module.

output "rest_api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "stage_name" {
  description = "The stage CloudFront forwards to."
  value       = aws_api_gateway_stage.this.stage_name
}

output "invoke_url" {
  description = "The stage's own URL (CloudFront's address is the public one)."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "origin_domain_name" {
  description = "The API's host name, CloudFront's origin for everything but static assets."
  value       = "${aws_api_gateway_rest_api.this.id}.execute-api.${data.aws_region.current.name}.amazonaws.com"
}

output "web_acl_arn" {
  description = "The WAF web ACL of the stage."
  value       = aws_wafv2_web_acl.this.arn
}
