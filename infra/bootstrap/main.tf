# Bootstrap, applied once per AWS account with local state: the S3 bucket and DynamoDB table the
# environments keep their state and locks in (their backend blocks name them), and the bucket that
# receives the state bucket's access logs.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project   = "steno"
      ManagedBy = "terraform"
      Stack     = "bootstrap"
    }
  }
}

module "access_logs" {
  source      = "../modules/log_bucket"
  bucket_name = "${var.state_bucket_name}-access-logs"
}

module "state" {
  source            = "../modules/state_backend"
  state_bucket_name = var.state_bucket_name
  lock_table_name   = var.lock_table_name
  access_log_bucket = module.access_logs.bucket_name
}
