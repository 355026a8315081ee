output "public_ips" {
  description = "The Elastic IP of each appliance: what partners allowlist and connect to (docs/partner-onboarding.md)."
  value       = aws_eip.sluice[*].public_ip
}

output "instance_ids" {
  description = "The EC2 instances, in the order of public_ips."
  value       = aws_instance.sluice[*].id
}

output "role_arn" {
  description = "The instance role (for the bucket policy, and a KMS key policy with SSE-KMS)."
  value       = aws_iam_role.sluice.arn
}

output "security_group_id" {
  description = "The appliance's security group."
  value       = aws_security_group.sluice.id
}

output "s3_endpoint_id" {
  description = "The S3 gateway endpoint, if created."
  value       = var.create_s3_endpoint ? aws_vpc_endpoint.s3[0].id : null
}

output "host_key_command" {
  description = "Run on each appliance to print the host key fingerprints partners pin."
  value       = "sudo sluice host-keys -c /etc/sluice/sluice.yaml"
}
