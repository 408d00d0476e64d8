#!/usr/bin/env bash
# What this image was built from, for the verification suite to know what
# to expect (no secrets are among DJBAKE_*: see builder/stack.py). Runs
# first in every Packer run, so an image built on a cached stack layer
# records its own inputs, not the layer's.
# Inputs: every DJBAKE_* variable.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

install -d -m 0755 /etc/djbake
# Not the payload path or the host's package cache: where this host keeps
# things is no fact about the image.
env | grep -E '^DJBAKE_' | grep -Ev '^DJBAKE_(PAYLOAD|APT_PROXY)=' | sort >/etc/djbake/build.env.new
chmod 0644 /etc/djbake/build.env.new
mv /etc/djbake/build.env.new /etc/djbake/build.env
