# Bare metal or VMs that already exist: nothing to create, only the inventory
# to render. Checks on the host map live in the inventory module.
module "inventory" {
  source = "../modules/inventory"

  cluster_name           = var.cluster_name
  hosts                  = var.hosts
  default_user           = var.admin_user
  memory_reserve_percent = var.memory_reserve_percent
  source_name            = "existing_hosts"
  extra_vars             = var.extra_vars
}
