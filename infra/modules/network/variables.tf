# Inputs of the network module. The defaults are R-INFRA-8's layout (docs/requirements.md).

variable "name" {
  description = "Name prefix of every network resource, e.g. steno-production."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "The zones the subnets are spread over, one subnet of each tier per zone."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "public_subnet_cidrs" {
  description = "Public subnets (NAT gateways only), one per zone, in zone order."
  type        = list(string)
  default     = ["10.0.101.0/24", "10.0.102.0/24"]
}

variable "private_subnet_cidrs" {
  description = "Private subnets (the Steno function, interface endpoints), one per zone."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]
}

variable "database_subnet_cidrs" {
  description = "Database subnets (no internet route), one per zone; the DB subnet group and opsd's drill and restore copies use them."
  type        = list(string)
  default     = ["10.0.201.0/24", "10.0.202.0/24"]
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway in each zone (true, R-INFRA-8) or a single shared one (cheaper, for staging)."
  type        = bool
  default     = true
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints from the private subnets (lambda, monitoring, rds and sns are the APIs opsd calls that have endpoints; CloudFront and Cost Explorer have none). Each costs an hourly fee per zone."
  type        = list(string)
  default     = ["lambda", "monitoring", "rds", "sns"]
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string
}
