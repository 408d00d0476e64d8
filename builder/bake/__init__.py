"""`djbake image`: spec -> Packer template -> Packer run -> in-build gate -> seal -> artifact -> record.

pipeline.py runs the steps for one provider (multi.py for several at once);
render/template/stack/layers/wheelhouse/plugin_schema write what Packer
reads; packer/runner/progress run Packer and time it; gate is the in-build
testinfra gate; apt_cache the host's package cache; provenance the facts
written into every image and catalog entry.
"""
