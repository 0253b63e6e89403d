# Outputs of the database module.

output "instance_id" {
  description = "RDS instance identifier: opsd.yaml's databases.<name>.rds.instance and services.<name>.aws.database_instance."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "ARN of the instance."
  value       = aws_db_instance.this.arn
}

output "endpoint" {
  description = "host:port of the instance, for Steno's DATABASE_URL."
  value       = aws_db_instance.this.endpoint
}

output "subnet_group_name" {
  description = "The DB subnet group the instance, opsd's drill copies and restores live in."
  value       = aws_db_subnet_group.this.name
}

output "security_group_id" {
  description = "Security group of the instance (its drill copies get it too)."
  value       = aws_security_group.this.id
}

output "parameter_group_name" {
  description = "The instance's parameter group."
  value       = aws_db_parameter_group.this.name
}

output "engine_major_version" {
  description = "PostgreSQL major version, e.g. 15."
  value       = local.major_version
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the master user's password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
