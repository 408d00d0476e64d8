"""djbake: bake verified, Django-ready server images with Packer.

The pipeline, one module per step:
  spec.py        YAML spec -> validated model (errors name file:line:col)
  providers/     one module per provider: Packer source + cloud operations
  template.py    model + provider -> Packer HCL2 JSON template
  packer.py      Packer detection, plugins file, validate
  runner.py      streaming Packer runner (signals, secret-filtered log)
  gate.py        in-build testinfra gate
  verify.py      fresh-boot testinfra verification
  catalog.py     record of every build: select / launch / prune read it
"""
__version__ = "0.1.0"
