# -var channel=production: the build that djbake release channel points at
# (../modules/djbake-channel); empty: main.tf's selection by name.
variable "channel" {
  type    = string
  default = ""
}

module "djbake_channel" {
  source        = "../modules/djbake-channel"
  channel       = var.channel
  image         = var.image_name
  provider_name = "gcp"
  region        = var.zone
}

locals {
  channel_image = module.djbake_channel.image
}
