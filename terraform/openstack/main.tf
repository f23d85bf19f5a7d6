provider "openstack" {
  region = var.region
}

module "design" {
  source = "../modules/cluster_design"

  cluster_name   = var.cluster_name
  compute_count  = var.compute_count
  admin_user     = var.admin_user
  ssh_public_key = var.ssh_public_key
  tags           = var.tags
}

# CPUs and memory of the chosen flavors, for Slurm's node definitions.
data "openstack_compute_flavor_v2" "controller" {
  name = var.controller.size
}

data "openstack_compute_flavor_v2" "compute" {
  name = var.compute_size
}

locals {
  inventory_path = var.inventory_path != "" ? var.inventory_path : "${path.root}/${var.cluster_name}-inventory.yml"
  controller_ip  = openstack_networking_floatingip_v2.controller.address
  # OpenStack tags are plain strings: key=value.
  resource_tags = [for k, v in module.design.tags : "${k}=${v}"]
}

module "inventory" {
  source = "../modules/inventory"

  cluster_name           = var.cluster_name
  default_user           = var.admin_user
  memory_reserve_percent = var.memory_reserve_percent
  source_name            = "openstack"

  hosts = merge(
    {
      (module.design.controller_name) = {
        address         = local.controller_ip
        private_address = openstack_networking_port_v2.controller.all_fixed_ips[0]
        roles           = ["controller", "dbd", "nfs", "portal"]
        cpus            = data.openstack_compute_flavor_v2.controller.vcpus
        memory_mb       = data.openstack_compute_flavor_v2.controller.ram
      }
    },
    {
      for name in module.design.compute_names : name => {
        address         = openstack_networking_port_v2.compute[name].all_fixed_ips[0]
        private_address = openstack_networking_port_v2.compute[name].all_fixed_ips[0]
        roles           = ["compute"]
        cpus            = data.openstack_compute_flavor_v2.compute.vcpus
        memory_mb       = data.openstack_compute_flavor_v2.compute.ram
        proxy_jump      = "${var.admin_user}@${local.controller_ip}"
      }
    },
  )

  host_extra_vars = {
    # virtio disks are listed by the first 20 characters of the volume id.
    (module.design.controller_name) = {
      shared_storage_device = "/dev/disk/by-id/virtio-${substr(openstack_blockstorage_volume_v3.shared.id, 0, 20)}"
    }
  }
}

resource "local_file" "inventory" {
  content         = module.inventory.yaml
  filename        = local.inventory_path
  file_permission = "0644"
}
