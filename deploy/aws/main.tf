# The sluice EC2 appliance: one or two instances in an existing VPC, each with
# an Elastic IP (the address partners allowlist), a security group that lets
# partners reach port 22 and nothing else in, a least-privilege instance role
# (write into the bucket's prefixes, never delete), an optional S3 gateway
# endpoint, and cloud-init that installs the .deb, writes the configuration,
# checks it and starts the service. See README.md in this directory.

locals {
  tags = merge({ "Name" = var.name, "app" = "sluice" }, var.tags)

  # arn:aws:s3:::bucket/prefix* for each prefix the gateway writes under
  object_arns = [for p in var.s3_prefixes : "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/${p}*"]
  list_prefix = [for p in var.s3_prefixes : "${p}*"]

  deb_s3_bucket = var.deb_s3_uri == "" ? "" : split("/", trimprefix(var.deb_s3_uri, "s3://"))[0]
  deb_s3_key    = var.deb_s3_uri == "" ? "" : join("/", slice(split("/", trimprefix(var.deb_s3_uri, "s3://")), 1, length(split("/", trimprefix(var.deb_s3_uri, "s3://")))))

  # PutObject headers S3 checks a separate permission for
  put_extras = concat(
    var.object_lock ? ["s3:PutObjectRetention"] : [],
    var.legal_hold ? ["s3:PutObjectLegalHold"] : [],
    var.object_tags ? ["s3:PutObjectTagging"] : [],
    var.object_acl ? ["s3:PutObjectAcl"] : [],
  )
}

data "aws_ami" "debian12" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# --- network -----------------------------------------------------------------

resource "aws_security_group" "sluice" {
  name        = "${var.name}-gateway"
  description = "sluice: SFTP from partners on 22; management SSH and metrics from admins only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "partners" {
  for_each          = toset(var.partner_cidrs)
  security_group_id = aws_security_group.sluice.id
  description       = "SFTP (sluice) from a partner"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

resource "aws_vpc_security_group_ingress_rule" "admin_ssh" {
  for_each          = toset(var.admin_cidrs)
  security_group_id = aws_security_group.sluice.id
  description       = "the appliance's own sshd (moved off 22)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.admin_ssh_port
  to_port           = var.admin_ssh_port
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each          = toset(var.metrics_cidrs)
  security_group_id = aws_security_group.sluice.id
  description       = "Prometheus scrape of /metrics"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
}

# Out: HTTPS (S3, STS, KMS, SSM) and HTTP (Debian's apt mirrors). DNS, NTP
# (169.254.169.123) and instance metadata are link-local and not filtered.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.sluice.id
  description       = "S3, KMS, STS, SSM"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.sluice.id
  description       = "apt (Debian mirrors sign their packages)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.create_s3_endpoint ? 1 : 0
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  tags              = merge(local.tags, { "Name" = "${var.name}-s3" })
}

# --- the instance role ---------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "sluice" {
  # Objects under the prefixes: write, read back (reconcile, collision
  # checks), finish or abandon multipart uploads. No s3:DeleteObject anywhere.
  statement {
    sid = "WriteObjects"
    actions = concat([
      "s3:PutObject",
      "s3:GetObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ], local.put_extras)
    resources = local.object_arns
  }

  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = local.list_prefix
    }
  }

  # ListBucketMultipartUploads takes no s3:prefix condition: it is granted on
  # the bucket (it names uploads in progress, never their contents).
  statement {
    sid       = "ListUploads"
    actions   = concat(["s3:ListBucketMultipartUploads"], var.collision_version ? ["s3:GetBucketVersioning"] : [])
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [var.kms_key_arn]
    content {
      sid       = "UseKmsKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.deb_s3_uri == "" ? [] : [var.deb_s3_uri]
    content {
      sid       = "ReadPackage"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.deb_s3_bucket}/${local.deb_s3_key}"]
    }
  }

  dynamic "statement" {
    for_each = var.host_key_ssm_parameter == "" ? [] : [var.host_key_ssm_parameter]
    content {
      sid       = "ReadHostKey"
      actions   = ["ssm:GetParameter"]
      resources = ["arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(statement.value, "/")}"]
    }
  }
}

resource "aws_iam_role" "sluice" {
  name               = "${var.name}-appliance"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "sluice" {
  name   = "${var.name}-store"
  role   = aws_iam_role.sluice.id
  policy = data.aws_iam_policy_document.sluice.json
}

resource "aws_iam_instance_profile" "sluice" {
  name = "${var.name}-appliance"
  role = aws_iam_role.sluice.name
  tags = local.tags
}

# --- the appliances -------------------------------------------------------------

resource "aws_instance" "sluice" {
  count                  = var.instance_count
  ami                    = var.ami_id != "" ? var.ami_id : data.aws_ami.debian12[0].id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index % length(var.subnet_ids)]
  vpc_security_group_ids = [aws_security_group.sluice.id]
  iam_instance_profile   = aws_iam_instance_profile.sluice.name
  key_name               = var.key_name != "" ? var.key_name : null

  # IMDSv2 only, one hop: the uploader's credentials (IMDS, last in the
  # chain) are not reachable from a container or a forwarded request.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    node                   = count.index
    hostname               = "${var.name}-${count.index}"
    region                 = var.region
    admin_ssh_port         = var.admin_ssh_port
    deb_url                = var.deb_url
    deb_s3_uri             = var.deb_s3_uri
    deb_sha256             = var.deb_sha256
    config_b64             = base64encode(var.sluice_config)
    host_key_ssm_parameter = var.host_key_ssm_parameter
    host_key_path          = var.host_key_path
  })
  user_data_replace_on_change = false

  tags = merge(local.tags, { "Name" = "${var.name}-${count.index}" })

  lifecycle {
    # a new Debian AMI must not replace a running appliance (and its spool)
    ignore_changes = [ami, user_data]
  }
}

# The address partners allowlist: one per instance, kept when an instance is
# replaced (terraform state holds it; never `terraform destroy` it lightly).
resource "aws_eip" "sluice" {
  count    = var.instance_count
  domain   = "vpc"
  instance = aws_instance.sluice[count.index].id
  tags     = merge(local.tags, { "Name" = "${var.name}-${count.index}" })

  lifecycle {
    prevent_destroy = true
  }
}
