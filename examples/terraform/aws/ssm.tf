# Select the newest verified djbake AMI through the SSM parameter djbake
# writes after verification in each region: /djbake/<image>/latest.
# (djbake publishes only AMIs whose fresh-boot verification passed.) With
# -var channel=production: /djbake/<image>/production, which `djbake channel
# set` writes and `djbake revoke` deletes (the plan then fails, never the
# revoked AMI).

variable "image" {
  type    = string
  default = "django-web"
}

variable "channel" {
  description = "djbake release channel (djbake channel set ... --provider aws publishes /djbake/<image>/<channel>); empty: latest"
  type        = string
  default     = ""
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "user_data" {
  description = "cloud-init user-data for the VM (deploy the project, set ALLOWED_HOSTS...)"
  type        = string
  default     = ""
}

data "aws_ssm_parameter" "djbake_ami" {
  name = "/djbake/${var.image}/${var.channel == "" ? "latest" : var.channel}"
}

resource "aws_instance" "web" {
  ami           = data.aws_ssm_parameter.djbake_ami.value
  instance_type = var.instance_type
  user_data     = var.user_data

  # The AMI is built for IMDSv2 only; keep instances that way too.
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = {
    Name = "${var.image}-web"
  }
}

# The same without a data source: EC2 resolves the parameter at launch, e.g.
# in a launch template (or `aws ec2 run-instances --image-id resolve:ssm:...`).
resource "aws_launch_template" "web" {
  name_prefix   = "${var.image}-"
  image_id      = "resolve:ssm:/djbake/${var.image}/latest"
  instance_type = var.instance_type

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
}

output "ami" {
  value     = data.aws_ssm_parameter.djbake_ami.value
  sensitive = true
}
