#!/bin/sh
# sshd's AuthorizedKeysCommand in the stand-in: the public key of this
# instance's key pair, asked from the EC2 API (moto), for the image's default
# user only. On EC2, cloud-init writes the same key into authorized_keys.
set -eu
. /etc/djbake-standin.conf
api() {
    curl -fsS --max-time 10 \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=standin/20250101/$REGION/ec2/aws4_request, SignedHeaders=host, Signature=0" \
        "$ENDPOINT/?Version=2016-11-15&$1"
}
[ "${1:-}" = "$DEFAULT_USER" ] || exit 0
key=$(api "Action=DescribeInstances&InstanceId.1=$INSTANCE_ID" \
    | grep -o '<keyName>[^<]*</keyName>' | head -n 1 | sed 's/<[^>]*>//g')
[ -n "$key" ] || exit 0
api "Action=DescribeKeyPairs&IncludePublicKey=true&KeyName.1=$key" \
    | grep -o '<publicKey>[^<]*</publicKey>' | sed 's/<[^>]*>//g'
