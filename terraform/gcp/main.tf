provider "google" {
  project        = var.project
  region         = var.region
  zone           = var.zone
  default_labels = module.design.labels
}

module "design" {
  source = "../modules/cluster_design"

  cluster_name   = var.cluster_name
  compute_count  = var.compute_count
  admin_user     = var.admin_user
  ssh_public_key = var.ssh_public_key
  tags           = var.tags
}

# CPUs and memory of the chosen machine types, for Slurm's node definitions.
data "google_compute_machine_types" "controller" {
  zone   = var.zone
  filter = "name = \"${var.controller.size}\""
}

data "google_compute_machine_types" "compute" {
  zone   = var.zone
  filter = "name = \"${var.compute_size}\""
}

locals {
  controller_type = one(data.google_compute_machine_types.controller.machine_types)
  compute_type    = one(data.google_compute_machine_types.compute.machine_types)
  inventory_path  = var.inventory_path != "" ? var.inventory_path : "${path.root}/${var.cluster_name}-inventory.yml"
  controller_ip   = google_compute_address.controller.address
}

module "inventory" {
  source = "../modules/inventory"

  cluster_name           = var.cluster_name
  default_user           = var.admin_user
  memory_reserve_percent = var.memory_reserve_percent
  source_name            = "gcp"

  hosts = merge(
    {
      (module.design.controller_name) = {
        address         = local.controller_ip
        private_address = google_compute_instance.controller.network_interface[0].network_ip
        roles           = ["controller", "dbd", "nfs", "portal"]
        cpus            = local.controller_type.guest_cpus
        memory_mb       = local.controller_type.memory_mb
      }
    },
    {
      for name in module.design.compute_names : name => {
        address         = google_compute_instance.compute[name].network_interface[0].network_ip
        private_address = google_compute_instance.compute[name].network_interface[0].network_ip
        roles           = ["compute"]
        cpus            = local.compute_type.guest_cpus
        memory_mb       = local.compute_type.memory_mb
        proxy_jump      = "${var.admin_user}@${local.controller_ip}"
      }
    },
  )

  host_extra_vars = {
    (module.design.controller_name) = {
      shared_storage_device = "/dev/disk/by-id/google-shared"
    }
  }
}

resource "local_file" "inventory" {
  content         = module.inventory.yaml
  filename        = local.inventory_path
  file_permission = "0644"
}
