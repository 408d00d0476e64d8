# Select the newest verified djbake AMI by its tags, without SSM: djbake tags
# each AMI (and snapshot) with its provenance and sets djbake:verified=true
# only after the fresh-boot verification passed.

variable "tags_image" {
  type    = string
  default = "django-web"
}

data "aws_ami" "djbake" {
  owners      = ["self"]
  most_recent = true

  filter {
    name   = "tag:djbake:image"
    values = [var.tags_image]
  }

  filter {
    name   = "tag:djbake:verified"
    values = ["true"]
  }

  filter {
    name   = "state"
    values = ["available"]
  }
}

# Pin an exact build instead (reproducible deploys): add
#   filter { name = "tag:djbake:build-id" values = ["20261128123456-abc123"] }

output "djbake_ami_by_tags" {
  value = {
    id       = data.aws_ami.djbake.id
    name     = data.aws_ami.djbake.name
    build_id = data.aws_ami.djbake.tags["djbake:build-id"]
    commit   = data.aws_ami.djbake.tags["djbake:git-commit"]
  }
}
