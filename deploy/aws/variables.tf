# Inputs of the sluice EC2 appliance. deploy/aws/README.md says what each is for;
# terraform.tfvars.example is a filled-in example.

variable "region" {
  description = "AWS region of the VPC and the bucket."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource (and the Name tag)."
  type        = string
  default     = "sluice"
}

variable "instance_count" {
  description = "1 for a single appliance, 2 for the pair (each with its own Elastic IP, spool and audit trail)."
  type        = number
  default     = 1
  validation {
    condition     = var.instance_count == 1 || var.instance_count == 2
    error_message = "instance_count is 1 or 2."
  }
}

variable "vpc_id" {
  description = "The existing VPC the appliance lives in."
  type        = string
}

variable "subnet_ids" {
  description = "Existing public subnet(s) (a route to an internet gateway, for the Elastic IP). Instance i uses subnet_ids[i % length]: give two subnets in two zones for the pair."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids needs at least one subnet id."
  }
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "t3.small"
}

variable "ami_id" {
  description = "AMI to boot; empty: the newest official Debian 12 (bookworm) amd64 AMI (owner 136693071363), or the image baked by deploy/image/."
  type        = string
  default     = ""
}

variable "root_volume_gb" {
  description = "Size of the (encrypted) root volume: the spool, the state database and the audit trail live on it."
  type        = number
  default     = 30
}

variable "key_name" {
  description = "EC2 key pair for the administrators' SSH login on admin_ssh_port; empty: none (use SSM Session Manager or the serial console)."
  type        = string
  default     = ""
}

variable "partner_cidrs" {
  description = "Source addresses of partners allowed to reach the gateway on port 22 (what each partner told you; see docs/partner-onboarding.md)."
  type        = list(string)
  validation {
    condition     = alltrue([for c in var.partner_cidrs : can(cidrhost(c, 0))])
    error_message = "partner_cidrs must be CIDR blocks such as 203.0.113.7/32."
  }
}

variable "admin_cidrs" {
  description = "Source addresses allowed to the appliance's own sshd on admin_ssh_port; empty: no management SSH through the security group."
  type        = list(string)
  default     = []
}

variable "admin_ssh_port" {
  description = "The appliance's own sshd listens here: the gateway owns port 22."
  type        = number
  default     = 2022
  validation {
    condition     = var.admin_ssh_port != 22 && var.admin_ssh_port > 0 && var.admin_ssh_port < 65536
    error_message = "admin_ssh_port must not be 22 (the gateway's port)."
  }
}

variable "metrics_cidrs" {
  description = "Prometheus servers allowed to scrape metrics_port (metrics.listen must then be 0.0.0.0:PORT); empty: closed."
  type        = list(string)
  default     = []
}

variable "metrics_port" {
  description = "The metrics role's port (metrics.listen in sluice.yaml)."
  type        = number
  default     = 9464
}

variable "bucket" {
  description = "The bucket sluice stores into (store.url s3://BUCKET/PREFIX)."
  type        = string
}

variable "s3_prefixes" {
  description = "Key prefixes the gateway writes under: store.url's prefix, and any other prefix it uses in the same bucket (quarantine_prefix, audit segments shipped to the store). \"\" is the whole bucket."
  type        = list(string)
  default     = ["incoming/"]
}

variable "object_lock" {
  description = "true when sluice.yaml sets store.object_lock (grants s3:PutObjectRetention)."
  type        = bool
  default     = false
}

variable "legal_hold" {
  description = "true when sluice.yaml sets store.legal_hold (grants s3:PutObjectLegalHold)."
  type        = bool
  default     = false
}

variable "object_tags" {
  description = "true when sluice.yaml sets store.tags or a partner's tags (S3 wants s3:PutObjectTagging for x-amz-tagging)."
  type        = bool
  default     = false
}

variable "object_acl" {
  description = "true when sluice.yaml sets store.acl (grants s3:PutObjectAcl)."
  type        = bool
  default     = false
}

variable "collision_version" {
  description = "true when sluice.yaml sets store.collision: version (grants s3:GetBucketVersioning)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "With store.sse: aws:kms, the key's ARN (grants kms:GenerateDataKey and kms:Decrypt on it alone); empty: none."
  type        = string
  default     = ""
}

variable "create_s3_endpoint" {
  description = "Create an S3 gateway VPC endpoint on route_table_ids, so uploads stay on the AWS network (and cost no NAT traffic)."
  type        = bool
  default     = false
}

variable "route_table_ids" {
  description = "Route tables of the subnets, for the S3 gateway endpoint."
  type        = list(string)
  default     = []
}

variable "deb_url" {
  description = "HTTPS URL of the sluice .deb to install at first boot (one of deb_url, deb_s3_uri; both empty: the AMI already has it, as deploy/image/ bakes it)."
  type        = string
  default     = ""
}

variable "deb_s3_uri" {
  description = "s3://bucket/key of the sluice .deb (the instance role may read that one object)."
  type        = string
  default     = ""
  validation {
    condition     = var.deb_s3_uri == "" || can(regex("^s3://[^/]+/.+", var.deb_s3_uri))
    error_message = "deb_s3_uri is s3://bucket/key."
  }
}

variable "deb_sha256" {
  description = "SHA-256 of the .deb; when set the download is refused unless it matches."
  type        = string
  default     = ""
}

variable "sluice_config" {
  description = "The text of /etc/sluice/sluice.yaml (e.g. templatefile(\"sluice.yaml.tftpl\", {...}) or file(\"sluice.yaml\")). It must pass sluice check-config; the first boot checks it before starting the service."
  type        = string
}

variable "host_key_ssm_parameter" {
  description = "Name of an SSM SecureString parameter holding the OpenSSH private host key (ed25519) both nodes share, written to host_key_path; empty: each node generates its own at first start (partners then pin two fingerprints)."
  type        = string
  default     = ""
}

variable "host_key_path" {
  description = "Where the shared host key goes (host_keys in sluice.yaml)."
  type        = string
  default     = "/var/lib/sluice/ssh_host_ed25519_key"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
