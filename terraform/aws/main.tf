provider "aws" {
  region = var.region

  default_tags {
    tags = module.design.tags
  }
}

module "design" {
  source = "../modules/cluster_design"

  cluster_name   = var.cluster_name
  compute_count  = var.compute_count
  admin_user     = var.admin_user
  ssh_public_key = var.ssh_public_key
  tags           = var.tags
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# CPUs and memory of the chosen instance types, for Slurm's node definitions.
data "aws_ec2_instance_type" "controller" {
  instance_type = var.controller.size
}

data "aws_ec2_instance_type" "compute" {
  instance_type = var.compute_size
}

locals {
  availability_zone = var.availability_zone != "" ? var.availability_zone : "${var.region}a"
  inventory_path    = var.inventory_path != "" ? var.inventory_path : "${path.root}/${var.cluster_name}-inventory.yml"
}

module "inventory" {
  source = "../modules/inventory"

  cluster_name           = var.cluster_name
  default_user           = var.admin_user
  memory_reserve_percent = var.memory_reserve_percent
  source_name            = "aws"

  hosts = merge(
    {
      (module.design.controller_name) = {
        address         = aws_eip.controller.public_ip
        private_address = aws_instance.controller.private_ip
        roles           = ["controller", "dbd", "nfs", "portal"]
        cpus            = data.aws_ec2_instance_type.controller.default_vcpus
        memory_mb       = data.aws_ec2_instance_type.controller.memory_size
      }
    },
    {
      for name in module.design.compute_names : name => {
        address         = aws_instance.compute[name].private_ip
        private_address = aws_instance.compute[name].private_ip
        roles           = ["compute"]
        cpus            = data.aws_ec2_instance_type.compute.default_vcpus
        memory_mb       = data.aws_ec2_instance_type.compute.memory_size
        proxy_jump      = "${var.admin_user}@${aws_eip.controller.public_ip}"
      }
    },
  )

  host_extra_vars = {
    # Nitro instances expose EBS volumes as NVMe devices named after the volume id.
    (module.design.controller_name) = {
      shared_storage_device = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${replace(aws_ebs_volume.shared.id, "-", "")}"
    }
  }
}

resource "local_file" "inventory" {
  content         = module.inventory.yaml
  filename        = local.inventory_path
  file_permission = "0644"
}
