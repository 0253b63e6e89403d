# Terraform and provider versions of the production environment, and where its state is kept: the
# bucket and lock table infra/bootstrap creates in the production account.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }

  backend "s3" {
    bucket         = "steno-terraform-state-production"
    key            = "production/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "steno-terraform-locks"
    encrypt        = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "steno"
      Environment = "production"
      ManagedBy   = "terraform"
    }
  }
}
