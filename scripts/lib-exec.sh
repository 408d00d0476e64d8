#!/usr/bin/env bash
# Runs one provisioning script under its own name. Packer's shell
# provisioner uploads every script of a `scripts` list to the same remote
# file (/tmp/script_N.sh), so $0 there says nothing; the payload uploaded
# before holds the same scripts under their names, and lib.sh names the
# script in its error lines from $0. One provisioner for all the scripts
# (builder/bake/template.py) instead of one each: every provisioner is a
# plugin process Packer starts to validate or build a template.
# Usage (Packer's execute_command): bash lib-exec.sh UPLOADED_SCRIPT
set -euo pipefail
uploaded=${1:?usage: lib-exec.sh UPLOADED_SCRIPT}
here=$(dirname "$0")
for script in "$here"/*.sh; do
    if [ "$script" != "$0" ] && cmp -s "$uploaded" "$script"; then
        exec bash "$script"
    fi
done
echo "djbake: $uploaded is none of the scripts in $here" >&2
exit 2
