# Steno's public API: an API Gateway REST API whose every path and method is proxied to the Steno
# function's `live` alias (so opsd's alias weights decide which version answers), with R-INFRA-5's
# throttling (docs/requirements.md), access logs, tracing, and a WAF in front of the stage.

data "aws_region" "current" {}

resource "aws_api_gateway_rest_api" "this" {
  name        = var.name
  description = "Steno's web UI and JSON API"
  # Uploads and exports are binary: bodies pass to and from the function base64-encoded.
  binary_media_types = ["*/*"]

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "{proxy+}"
}

locals {
  routes = {
    root  = aws_api_gateway_rest_api.this.root_resource_id
    proxy = aws_api_gateway_resource.proxy.id
  }
}

resource "aws_api_gateway_method" "any" {
  #checkov:skip=CKV_AWS_59:Steno authenticates every request itself (bearer tokens and session cookies) and its login and registration pages must be reachable without one
  #checkov:skip=CKV2_AWS_53:Steno validates every request body itself and answers 4xx naming the field; a proxy method has no model to validate against
  for_each      = local.routes
  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = each.value
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "function" {
  for_each                = local.routes
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value
  http_method             = aws_api_gateway_method.any[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_alias_invoke_arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "steno-api-invokes-${var.function_alias_name}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  qualifier     = var.function_alias_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.proxy.id,
      [for method in aws_api_gateway_method.any : method.id],
      [for integration in aws_api_gateway_integration.function : integration.id],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Steno's answers are per user and per request; caching them in API Gateway would serve one firm's data to another
  #checkov:skip=CKV2_AWS_77:the WAF has the known-bad-inputs rules (Log4j); the anonymous-IP list is left out because it blocks VPNs and hosting providers, which law firms' staff and integrations use
  #checkov:skip=CKV2_AWS_51:clients are browsers and scripts on the public internet, which present no client certificates
  deployment_id        = aws_api_gateway_deployment.this.id
  rest_api_id          = aws_api_gateway_rest_api.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      path           = "$context.path"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latencyMs      = "$context.responseLatency"
      wafStatus      = "$context.waf.status"
    })
  }

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Steno's answers are per user and per request; caching them in API Gateway would serve one firm's data to another
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    throttling_burst_limit = var.throttle_burst_limit
    throttling_rate_limit  = var.throttle_rate_limit
    metrics_enabled        = true
    logging_level          = "ERROR"
    caching_enabled        = false
    cache_data_encrypted   = true
  }
}
