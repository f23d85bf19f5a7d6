# Offline tests: this module has no providers, so `terraform init` needs no
# downloads and every run below only plans.

variables {
  cluster_name = "olp"
  default_user = "ansible"
  hosts = {
    ctl = {
      address         = "203.0.113.10"
      private_address = "10.0.0.10"
      roles           = ["controller"]
      cpus            = 4
      memory_mb       = 16384
    }
    node-001 = {
      address    = "10.0.1.11"
      roles      = ["compute"]
      cpus       = 8
      memory_mb  = 32768
      proxy_jump = "ansible@203.0.113.10"
    }
    node-002 = {
      address   = "10.0.1.12"
      roles     = ["compute"]
      cpus      = 8
      memory_mb = 32768
      user      = "debian"
    }
  }
}

run "services_default_to_the_controller" {
  command = plan

  assert {
    condition     = output.groups.slurm_controller == tolist(["ctl"])
    error_message = "The controller group must hold exactly the controller."
  }
  assert {
    condition     = output.groups.slurm_dbd == tolist(["ctl"]) && output.groups.nfs_server == tolist(["ctl"]) && output.groups.portal == tolist(["ctl"])
    error_message = "Without dedicated hosts, slurmdbd, the NFS server and the portal must go on the controller."
  }
  assert {
    condition     = output.groups.slurm_compute == tolist(["node-001", "node-002"])
    error_message = "The compute group must list the compute hosts, sorted."
  }
  assert {
    condition     = output.groups.nfs_clients == tolist(["node-001", "node-002"])
    error_message = "Every host except the NFS server must be an NFS client."
  }
  assert {
    condition     = output.controller == "ctl"
    error_message = "The controller output must name the controller."
  }
}

run "yaml_has_groups_and_host_vars" {
  command = plan

  assert {
    condition = toset(keys(yamldecode(output.yaml).all.children)) == toset([
      "slurm_controller", "slurm_dbd", "slurm_compute", "nfs_server", "nfs_clients", "portal",
    ])
    error_message = "The YAML must have exactly the six groups the Ansible roles expect."
  }
  assert {
    condition     = keys(yamldecode(output.yaml).all.children.slurm_compute.hosts) == ["node-001", "node-002"]
    error_message = "The YAML compute group must list both compute hosts."
  }
  assert {
    condition = yamldecode(output.yaml).all.hosts["ctl"] == {
      ansible_host              = "203.0.113.10"
      ansible_user              = "ansible"
      slurm_node_addr           = "10.0.0.10"
      slurm_node_cpus           = 4
      slurm_node_real_memory_mb = 16384
    }
    error_message = "The controller's host vars are wrong."
  }
  assert {
    condition     = yamldecode(output.yaml).all.hosts["node-001"].ansible_ssh_common_args == "-o ProxyJump=ansible@203.0.113.10"
    error_message = "A host with proxy_jump must get ansible_ssh_common_args with ProxyJump."
  }
  assert {
    condition     = !contains(keys(yamldecode(output.yaml).all.hosts["node-002"]), "ansible_ssh_common_args")
    error_message = "A host without proxy_jump must not get ansible_ssh_common_args."
  }
  assert {
    condition     = yamldecode(output.yaml).all.hosts["node-002"].ansible_user == "debian" && yamldecode(output.yaml).all.hosts["node-002"].slurm_node_addr == "10.0.1.12"
    error_message = "A host's own user must win over default_user, and slurm_node_addr must default to address."
  }
  assert {
    condition     = yamldecode(output.yaml).all.vars.slurm_cluster_name == "olp" && yamldecode(output.yaml).all.vars.cluster_provider == "existing_hosts"
    error_message = "Cluster-wide vars must carry the cluster name and the source."
  }
  assert {
    condition     = startswith(output.yaml, "# Ansible inventory for cluster \"olp\"")
    error_message = "The YAML must start with its header comment."
  }
}

run "dedicated_service_hosts" {
  command = plan

  variables {
    hosts = {
      ctl   = { address = "10.0.0.10", roles = ["controller"], cpus = 2, memory_mb = 4096 }
      db    = { address = "10.0.0.11", roles = ["dbd"], cpus = 2, memory_mb = 4096 }
      files = { address = "10.0.0.12", roles = ["nfs"], cpus = 2, memory_mb = 4096 }
      web   = { address = "10.0.0.13", roles = ["portal"], cpus = 2, memory_mb = 4096 }
      n1    = { address = "10.0.0.20", roles = ["compute", "portal"], cpus = 16, memory_mb = 65536 }
    }
  }

  assert {
    condition     = output.groups.slurm_dbd == tolist(["db"]) && output.groups.nfs_server == tolist(["files"])
    error_message = "Dedicated dbd and nfs hosts must be used instead of the controller."
  }
  assert {
    condition     = output.groups.portal == tolist(["n1", "web"])
    error_message = "Every host with the portal role must be in the portal group."
  }
  assert {
    condition     = output.groups.nfs_clients == tolist(["ctl", "db", "n1", "web"])
    error_message = "Every host except the dedicated NFS server must be an NFS client."
  }
}

run "memory_reserve_and_extra_vars" {
  command = plan

  variables {
    memory_reserve_percent = 5
    source_name            = "aws"
    extra_vars             = { shared_root = "/apps" }
    host_extra_vars        = { ctl = { shared_storage_device = "/dev/disk/by-id/google-shared" } }
  }

  assert {
    condition     = yamldecode(output.yaml).all.hosts["node-001"].slurm_node_real_memory_mb == 31129
    error_message = "RealMemory must be floor(memory_mb * 0.95) with a 5% reserve."
  }
  assert {
    condition     = yamldecode(output.yaml).all.hosts["ctl"].shared_storage_device == "/dev/disk/by-id/google-shared"
    error_message = "Per-host extra vars must reach the host."
  }
  assert {
    condition     = yamldecode(output.yaml).all.vars.shared_root == "/apps" && yamldecode(output.yaml).all.vars.cluster_provider == "aws"
    error_message = "Cluster-wide extra vars and the source name must reach all.vars."
  }
}

run "rejects_two_controllers" {
  command = plan

  variables {
    hosts = {
      a = { address = "10.0.0.1", roles = ["controller"], cpus = 2, memory_mb = 4096 }
      b = { address = "10.0.0.2", roles = ["controller", "compute"], cpus = 2, memory_mb = 4096 }
    }
  }

  expect_failures = [var.hosts]
}

run "rejects_a_cluster_without_compute" {
  command = plan

  variables {
    hosts = {
      a = { address = "10.0.0.1", roles = ["controller"], cpus = 2, memory_mb = 4096 }
    }
  }

  expect_failures = [var.hosts]
}

run "rejects_unknown_roles" {
  command = plan

  variables {
    hosts = {
      a = { address = "10.0.0.1", roles = ["controller"], cpus = 2, memory_mb = 4096 }
      b = { address = "10.0.0.2", roles = ["compute", "login"], cpus = 2, memory_mb = 4096 }
    }
  }

  expect_failures = [var.hosts]
}

run "rejects_invalid_node_names" {
  command = plan

  variables {
    hosts = {
      a      = { address = "10.0.0.1", roles = ["controller"], cpus = 2, memory_mb = 4096 }
      Node_1 = { address = "10.0.0.2", roles = ["compute"], cpus = 2, memory_mb = 4096 }
    }
  }

  expect_failures = [var.hosts]
}

run "rejects_fractional_cpus" {
  command = plan

  variables {
    hosts = {
      a = { address = "10.0.0.1", roles = ["controller"], cpus = 2, memory_mb = 4096 }
      b = { address = "10.0.0.2", roles = ["compute"], cpus = 1.5, memory_mb = 4096 }
    }
  }

  expect_failures = [var.hosts]
}
