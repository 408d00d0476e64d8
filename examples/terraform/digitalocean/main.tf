# A Droplet from the newest snapshot djbake baked (name django-web-<version>-<build id>).
# Token: DIGITALOCEAN_TOKEN (the same variable djbake reads).

terraform {
  required_version = ">= 1.3"
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = ">= 2.30"
    }
  }
}

provider "digitalocean" {}

variable "image_name" {
  description = "The spec's name: snapshots are named <image_name>-<version>-<build id>."
  type        = string
  default     = "django-web"
}

variable "image_id" {
  description = "Pin a snapshot id (e.g. `djbake latest -p digitalocean`); empty: the newest by name."
  type        = string
  default     = ""
}

variable "region" {
  description = "A region the snapshot was copied to (the spec's providers.digitalocean.regions)."
  type        = string
  default     = "nyc3"
}

variable "size" {
  type    = string
  default = "s-1vcpu-2gb"
}

variable "ssh_key_name" {
  description = "Name of an SSH key already added to the DigitalOcean account."
  type        = string
}

data "digitalocean_images" "djbake" {
  filter {
    key    = "private"
    values = ["true"]
  }

  filter {
    key      = "name"
    values   = ["^${var.image_name}-"]
    match_by = "re"
  }

  filter {
    key    = "regions"
    values = [var.region]
  }

  sort {
    key       = "created"
    direction = "desc"
  }
}

data "digitalocean_ssh_key" "admin" {
  name = var.ssh_key_name
}

locals {
  image = var.image_id != "" ? var.image_id : (local.channel_image != "" ? local.channel_image : tostring(data.digitalocean_images.djbake.images[0].id))
}

resource "digitalocean_droplet" "web" {
  name     = "${var.image_name}-web"
  region   = var.region
  size     = var.size
  image    = local.image
  ssh_keys = [data.digitalocean_ssh_key.admin.id]
  tags     = ["djbake", var.image_name]
}

output "image" {
  value = local.image
}

output "ipv4" {
  value = digitalocean_droplet.web.ipv4_address
}
