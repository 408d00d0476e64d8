# A Linode from the newest private image djbake baked (label django-web-<version>-<build id>).
# Token: LINODE_TOKEN (the same variable djbake reads).

terraform {
  required_version = ">= 1.3"
  required_providers {
    linode = {
      source  = "linode/linode"
      version = ">= 2.5"
    }
  }
}

provider "linode" {}

variable "image_name" {
  description = "The spec's name: images are labelled <image_name>-<version>-<build id>."
  type        = string
  default     = "django-web"
}

variable "image_id" {
  description = "Pin an image (e.g. the output of `djbake latest -p linode`); empty: the newest by label."
  type        = string
  default     = ""
}

variable "region" {
  description = "A region the image was replicated to (the spec's providers.linode.regions)."
  type        = string
  default     = "us-east"
}

variable "type" {
  type    = string
  default = "g6-standard-1"
}

variable "ssh_public_key" {
  description = "Path of the public key allowed to log in as root."
  type        = string
  default     = "~/.ssh/id_ed25519.pub"
}

data "linode_images" "djbake" {
  latest = true

  filter {
    name     = "label"
    values   = ["^${var.image_name}-"]
    match_by = "re"
  }

  filter {
    name   = "is_public"
    values = ["false"]
  }
}

locals {
  image = var.image_id != "" ? var.image_id : (local.channel_image != "" ? local.channel_image : data.linode_images.djbake.images[0].id)
}

resource "linode_instance" "web" {
  label           = "${var.image_name}-web"
  region          = var.region
  type            = var.type
  image           = local.image
  authorized_keys = [chomp(file(pathexpand(var.ssh_public_key)))]
  tags            = ["djbake", var.image_name]
}

output "image" {
  value = local.image
}

output "ipv4" {
  value = one(linode_instance.web.ipv4)
}
