# A server from the newest snapshot djbake baked (label djbake/image=django-web).
# Token: HCLOUD_TOKEN (the same variable djbake reads).

terraform {
  required_version = ">= 1.3"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = ">= 1.45"
    }
  }
}

provider "hcloud" {}

variable "image_name" {
  description = "The spec's name: djbake labels its snapshots djbake/image=<image_name>."
  type        = string
  default     = "django-web"
}

variable "image_id" {
  description = "Pin a snapshot id (e.g. `djbake latest -p hetzner`); empty: the newest with the label."
  type        = string
  default     = ""
}

variable "location" {
  type    = string
  default = "fsn1"
}

variable "server_type" {
  type    = string
  default = "cx22"
}

variable "ssh_public_key" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}

data "hcloud_image" "djbake" {
  with_selector     = "djbake/image=${var.image_name}"
  with_architecture = "x86"
  most_recent       = true
}

resource "hcloud_ssh_key" "admin" {
  name       = "${var.image_name}-admin"
  public_key = chomp(file(pathexpand(var.ssh_public_key)))
}

locals {
  image = var.image_id != "" ? var.image_id : (local.channel_image != "" ? local.channel_image : tostring(data.hcloud_image.djbake.id))
}

resource "hcloud_server" "web" {
  name        = "${var.image_name}-web"
  image       = local.image
  server_type = var.server_type
  location    = var.location
  ssh_keys    = [hcloud_ssh_key.admin.id]
  labels = {
    "djbake/image" = var.image_name
  }
}

output "image" {
  value = local.image
}

output "ipv4" {
  value = hcloud_server.web.ipv4_address
}
