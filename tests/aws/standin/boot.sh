#!/bin/sh
# What cloud-init does at an EC2 instance's boot, for the stand-in: host
# keys, the image's default user with sudo, and the instance's user-data
# (kept as cloud-init keeps it; a #! script is run). Instance id, region and
# the EC2 endpoint (moto) come from /etc/djbake-standin.conf, written by the
# test harness when it starts this container for one moto instance.
set -eu
. /etc/djbake-standin.conf
ssh-keygen -A
if ! id "$DEFAULT_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -G sudo "$DEFAULT_USER"
fi
echo "$DEFAULT_USER ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
mkdir -p /var/lib/cloud/instance
echo "$INSTANCE_ID" > /var/lib/cloud/instance/instance-id
api() {
    curl -fsS --max-time 10 \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=standin/20250101/$REGION/ec2/aws4_request, SignedHeaders=host, Signature=0" \
        "$ENDPOINT/?Version=2016-11-15&$1"
}
api "Action=DescribeInstanceAttribute&InstanceId=$INSTANCE_ID&Attribute=userData" \
    | grep -o '<value>[^<]*</value>' | head -n 1 | sed 's/<[^>]*>//g' | base64 -d \
    > /var/lib/cloud/instance/user-data.txt || true
if head -c 2 /var/lib/cloud/instance/user-data.txt | grep -q '^#!'; then
    chmod 0700 /var/lib/cloud/instance/user-data.txt
    /var/lib/cloud/instance/user-data.txt > /var/log/user-data.log 2>&1 || echo "user-data failed: $?" >&2
fi
