#!/usr/bin/env bash
# A compressed qcow2 rewritten with zlib and with zstd clusters: size, write and read-back time.
set -euo pipefail
src=${1:?usage: qcow2_zstd.sh IMAGE.qcow2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src" "$work/src.qcow2"
secs() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc; }
for t in zlib zstd; do
    w=$(secs qemu-img convert -c -f qcow2 -O qcow2 -o compression_type=$t "$work/src.qcow2" "$work/$t.qcow2")
    r=$(secs qemu-img convert -f qcow2 -O raw "$work/$t.qcow2" "$work/$t.raw")
    rm -f "$work/$t.raw"
    echo "$t: $(stat -c %s "$work/$t.qcow2") bytes, write ${w} s, read back ${r} s"
done
