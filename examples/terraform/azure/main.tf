# A VM from the newest managed image djbake captured (name django-web-<version>-<build id>).
# Credentials: ARM_SUBSCRIPTION_ID, ARM_TENANT_ID, ARM_CLIENT_ID, ARM_CLIENT_SECRET
# (the values of djbake's AZURE_* variables), or `az login`.

terraform {
  required_version = ">= 1.3"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.80"
    }
  }
}

provider "azurerm" {
  features {}
}

variable "image_name" {
  type    = string
  default = "django-web"
}

variable "image_resource_group" {
  description = "Where djbake keeps the images (AZURE_RESOURCE_GROUP)."
  type        = string
}

variable "image_id" {
  description = "Pin an image: a managed image or gallery image version id (`djbake latest -p azure -r LOCATION`); empty: the newest managed image by name."
  type        = string
  default     = ""
}

variable "location" {
  description = "The image's location, or with a gallery one of its replicated regions (the spec's providers.azure regions)."
  type        = string
  default     = "eastus"
}

variable "size" {
  type    = string
  default = "Standard_B1ms"
}

variable "ssh_public_key" {
  type    = string
  default = "~/.ssh/id_ed25519.pub"
}

# Names are <image>-<version>-<build id>: sorted descending, the newest
# version comes first as long as versions sort as text (use djbake's
# timestamped build ids, or pin image_id).
data "azurerm_image" "djbake" {
  name_regex          = "^${var.image_name}-"
  sort_descending     = true
  resource_group_name = var.image_resource_group
}

locals {
  image = var.image_id != "" ? var.image_id : (local.channel_image != "" ? local.channel_image : data.azurerm_image.djbake.id)
}

resource "azurerm_resource_group" "web" {
  name     = "${var.image_name}-web"
  location = var.location
}

resource "azurerm_virtual_network" "web" {
  name                = "${var.image_name}-net"
  address_space       = ["10.20.0.0/16"]
  location            = azurerm_resource_group.web.location
  resource_group_name = azurerm_resource_group.web.name
}

resource "azurerm_subnet" "web" {
  name                 = "web"
  resource_group_name  = azurerm_resource_group.web.name
  virtual_network_name = azurerm_virtual_network.web.name
  address_prefixes     = ["10.20.1.0/24"]
}

resource "azurerm_public_ip" "web" {
  name                = "${var.image_name}-ip"
  location            = azurerm_resource_group.web.location
  resource_group_name = azurerm_resource_group.web.name
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_network_security_group" "web" {
  name                = "${var.image_name}-nsg"
  location            = azurerm_resource_group.web.location
  resource_group_name = azurerm_resource_group.web.name

  security_rule {
    name                       = "ssh-http-https"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "80", "443"]
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_network_interface" "web" {
  name                = "${var.image_name}-nic"
  location            = azurerm_resource_group.web.location
  resource_group_name = azurerm_resource_group.web.name

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.web.id
  }
}

resource "azurerm_network_interface_security_group_association" "web" {
  network_interface_id      = azurerm_network_interface.web.id
  network_security_group_id = azurerm_network_security_group.web.id
}

resource "azurerm_linux_virtual_machine" "web" {
  name                  = "${var.image_name}-web"
  resource_group_name   = azurerm_resource_group.web.name
  location              = azurerm_resource_group.web.location
  size                  = var.size
  admin_username        = "azureuser"
  network_interface_ids = [azurerm_network_interface.web.id]
  source_image_id       = local.image

  admin_ssh_key {
    username   = "azureuser"
    public_key = chomp(file(pathexpand(var.ssh_public_key)))
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "StandardSSD_LRS"
  }
}

output "image" {
  value = local.image
}

output "ipv4" {
  value = azurerm_public_ip.web.ip_address
}
