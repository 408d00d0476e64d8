# Select by release channel: the build `djbake channel set CHANNEL IMAGE BUILD`
# points at, read from the team's catalog (DJBAKE_CATALOG) by
# `djbake catalog export --channel` through Terraform's external data source.
# A revoked build makes that command (and so the plan) fail with the
# `djbake channel rollback ...` to run. Empty channel: main.tf's selection.

variable "channel" {
  description = "djbake release channel (dev, production, ...); empty: the newest image by name"
  type        = string
  default     = ""
}

data "external" "djbake_channel" {
  count   = var.channel == "" ? 0 : 1
  program = ["djbake", "catalog", "export", "--channel", var.channel, "--name", var.image_name, "--provider", "linode"]
}

locals {
  channel_image = var.channel == "" ? "" : data.external.djbake_channel[0].result["linode/${var.region}"]
}
