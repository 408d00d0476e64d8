# The artifact a djbake release channel selects for one provider and region:
# the build `djbake channel set CHANNEL IMAGE BUILD` points at, read from the
# team's catalog (DJBAKE_CATALOG) by `djbake catalog export --channel`
# through Terraform's external data source. A revoked build makes that
# command (and so the plan) fail with the `djbake channel rollback ...` to
# run. An empty channel selects nothing ("").

variable "channel" {
  description = "djbake release channel (dev, production, ...); empty: none"
  type        = string
}

variable "image" {
  type = string
}

variable "provider_name" {
  type = string
}

variable "region" {
  description = "the catalog's region: the region, location or zone the VM is created in"
  type        = string
}

data "external" "channel" {
  count   = var.channel == "" ? 0 : 1
  program = ["djbake", "catalog", "export", "--channel", var.channel, "--name", var.image, "--provider", var.provider_name]
}

output "image" {
  value = var.channel == "" ? "" : data.external.channel[0].result["${var.provider_name}/${var.region}"]
}
