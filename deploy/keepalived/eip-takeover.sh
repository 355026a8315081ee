#!/bin/sh
# deploy/keepalived/eip-takeover.sh ALLOCATION_ID - keepalived's notify_master
# in AWS: moves the Elastic IP partners allowlist to this instance
# (docs/operator-guide.md, "Two appliances and failover"). Needs the AWS CLI
# and an instance role allowed ec2:AssociateAddress on that allocation and
# ec2:DescribeAddresses. IMDSv2 only.
set -eu
alloc=${1:?usage: eip-takeover.sh eipalloc-...}
imds=http://169.254.169.254/latest
token=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/api/token")
md() { curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"; }
instance=$(md instance-id)
region=$(md placement/region)
aws ec2 associate-address --region "$region" --allocation-id "$alloc" \
    --instance-id "$instance" --allow-reassociation >/dev/null
logger -t sluice-eip "Elastic IP $alloc now on $instance"
