# An instance from the image family djbake bakes into (family = the spec's name).
# A family resolves to its newest non-deprecated image.
# Credentials: Application Default Credentials or GOOGLE_APPLICATION_CREDENTIALS.

terraform {
  required_version = ">= 1.3"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  description = "The project djbake built in (GCP_PROJECT_ID)."
  type        = string
}

variable "image_name" {
  description = "The spec's name, which is the image family."
  type        = string
  default     = "django-web"
}

variable "image_id" {
  description = "Pin an image name (e.g. `djbake latest -p gcp`); empty: the family's newest."
  type        = string
  default     = ""
}

variable "zone" {
  type    = string
  default = "us-central1-a"
}

variable "machine_type" {
  type    = string
  default = "e2-small"
}

variable "ssh_user" {
  type    = string
  default = "admin"
}

variable "ssh_public_key" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}

provider "google" {
  project = var.project
  zone    = var.zone
}

data "google_compute_image" "djbake" {
  project = var.project
  family  = var.image_id == "" && local.channel_image == "" ? var.image_name : null
  name    = var.image_id != "" ? var.image_id : (local.channel_image != "" ? local.channel_image : null)
}

resource "google_compute_instance" "web" {
  name         = "${var.image_name}-web"
  machine_type = var.machine_type
  tags         = ["http-server", "https-server"]

  boot_disk {
    initialize_params {
      image = data.google_compute_image.djbake.self_link
    }
  }

  network_interface {
    network = "default"
    access_config {}
  }

  metadata = {
    ssh-keys = "${var.ssh_user}:${chomp(file(pathexpand(var.ssh_public_key)))}"
  }

  labels = {
    djbake = var.image_name
  }
}

output "image" {
  value = data.google_compute_image.djbake.name
}

output "ipv4" {
  value = google_compute_instance.web.network_interface[0].access_config[0].nat_ip
}
