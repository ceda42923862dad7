# The PuffinDB Marketplace image, built by a release job where the internet is reachable:
# Amazon Linux 2023 (resolved through AWS's public SSM parameter), Node.js 20, terraform,
# the AWS provider mirrored for offline `terraform init`, the runtime bundle, the Lambda
# zips, the synthesized module and the first-boot units. Run from dist/marketplace/<version>/.
packer {
  required_plugins {
    amazon = { source = "github.com/hashicorp/amazon", version = ">= 1.3.0" }
  }
}

variable "region" { type = string }
variable "version" { type = string }
variable "terraform_version" { type = string }
variable "aws_provider_version" { type = string }

source "amazon-ebs" "puffindb" {
  region        = var.region
  instance_type = "m6i.large"
  ssh_username  = "ec2-user"
  ami_name      = "puffindb-${var.version}-{{timestamp}}"
  source_ami    = "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}}"
  encrypt_boot  = false # Marketplace images must be shareable; volumes launched from it are encrypted by the template.
  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
  }
}

build {
  sources = ["source.amazon-ebs.puffindb"]
  provisioner "file" {
    source      = "image/"
    destination = "/tmp/puffindb-image"
  }
  provisioner "shell" {
    script           = "ami/install.sh"
    execute_command  = "sudo -E bash '{{ .Path }}'"
    environment_vars = ["TERRAFORM_VERSION=${var.terraform_version}", "AWS_PROVIDER_VERSION=${var.aws_provider_version}"]
  }
}
