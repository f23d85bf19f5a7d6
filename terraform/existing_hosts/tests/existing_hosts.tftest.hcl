# Offline: no providers, so these runs plan the whole root module for real.

variables {
  cluster_name = "lab"
  admin_user   = "debian"
  hosts = {
    head = { address = "192.0.2.10", roles = ["controller", "dbd", "portal", "nfs"], cpus = 8, memory_mb = 30000 }
    cn01 = { address = "192.0.2.21", roles = ["compute"], cpus = 32, memory_mb = 125000 }
    cn02 = { address = "192.0.2.22", roles = ["compute"], cpus = 32, memory_mb = 125000, user = "ubuntu" }
  }
}

run "renders_the_inventory" {
  command = apply

  assert {
    condition     = output.controller == "head"
    error_message = "The controller must be head."
  }
  assert {
    condition     = keys(yamldecode(output.inventory_yaml).all.children.slurm_compute.hosts) == ["cn01", "cn02"]
    error_message = "Both compute nodes must be in slurm_compute."
  }
  assert {
    condition     = yamldecode(output.inventory_yaml).all.hosts["cn02"].ansible_user == "ubuntu" && yamldecode(output.inventory_yaml).all.hosts["cn01"].ansible_user == "debian"
    error_message = "admin_user is the default SSH user, a host's own user wins."
  }
  assert {
    condition     = yamldecode(output.inventory_yaml).all.hosts["cn01"].slurm_node_real_memory_mb == 125000
    error_message = "With no reserve, RealMemory is memory_mb as given."
  }
  assert {
    condition     = yamldecode(output.inventory_yaml).all.vars.cluster_provider == "existing_hosts"
    error_message = "The inventory must say it came from existing_hosts."
  }
}

run "one_machine_is_a_cluster" {
  command = apply

  variables {
    hosts = {
      solo = { address = "127.0.0.1", roles = ["controller", "compute"], cpus = 4, memory_mb = 8000, user = "root" }
    }
  }

  assert {
    condition     = output.groups.slurm_controller == tolist(["solo"]) && output.groups.slurm_compute == tolist(["solo"])
    error_message = "One host may be both controller and compute node."
  }
  assert {
    condition     = length(output.groups.nfs_clients) == 0 && length(yamldecode(output.inventory_yaml).all.children.nfs_clients.hosts) == 0
    error_message = "A single host serves NFS to nobody: nfs_clients must be empty."
  }
}
