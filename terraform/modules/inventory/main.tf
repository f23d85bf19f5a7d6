locals {
  roles = ["controller", "compute", "dbd", "portal", "nfs"]

  # Host names per role, sorted so that the rendered file is stable.
  members = {
    for role in local.roles : role => sort([for name, host in var.hosts : name if contains(host.roles, role)])
  }

  # Services without a dedicated host live on the controller.
  groups = {
    slurm_controller = local.members.controller
    slurm_dbd        = length(local.members.dbd) > 0 ? local.members.dbd : local.members.controller
    slurm_compute    = local.members.compute
    nfs_server       = length(local.members.nfs) > 0 ? local.members.nfs : local.members.controller
    portal           = length(local.members.portal) > 0 ? local.members.portal : local.members.controller
  }

  all_groups = merge(local.groups, {
    nfs_clients = sort(tolist(setsubtract(keys(var.hosts), local.groups.nfs_server)))
  })

  host_vars = {
    for name, host in var.hosts : name => merge(
      lookup(var.host_extra_vars, name, {}),
      {
        ansible_host              = host.address
        ansible_user              = coalesce(host.user, var.default_user)
        slurm_node_addr           = coalesce(host.private_address, host.address)
        slurm_node_cpus           = host.cpus
        slurm_node_real_memory_mb = floor(host.memory_mb * (100 - var.memory_reserve_percent) / 100)
      },
      host.proxy_jump == null ? {} : {
        ansible_ssh_common_args = "-o ProxyJump=${host.proxy_jump}"
      },
    )
  }

  inventory = {
    all = {
      vars = merge(var.extra_vars, {
        cluster_name       = var.cluster_name
        cluster_provider   = var.source_name
        slurm_cluster_name = var.cluster_name
      })
      hosts = local.host_vars
      children = {
        for group, names in local.all_groups : group => {
          hosts = { for name in names : name => {} }
        }
      }
    }
  }

  header = <<-EOT
    # Ansible inventory for cluster "${var.cluster_name}" (${var.source_name}).
    # Rendered by terraform/modules/inventory: edit the Terraform inputs, not this file.
  EOT
}
