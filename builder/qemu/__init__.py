"""Local QEMU: the accelerator probe, the bootstrapped base image, VMs, fresh-boot verification and local launch."""
