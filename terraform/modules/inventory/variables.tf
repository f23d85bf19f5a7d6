variable "cluster_name" {
  description = "Name of the cluster. Also used as the Slurm ClusterName, so it must be lowercase."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.cluster_name))
    error_message = "The cluster_name must be 2-32 lowercase letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "hosts" {
  description = <<-EOT
    Every machine of the cluster, keyed by its inventory (and Slurm node) name.
      address         - what Ansible connects to (public IP, private IP or DNS name)
      private_address - what the nodes use to reach each other (Slurm NodeAddr); defaults to address
      roles           - any of "controller", "compute", "dbd", "portal", "nfs"
      cpus            - CPUs Slurm may schedule on the host (Slurm CPUs)
      memory_mb       - memory of the host in MiB (Slurm RealMemory before memory_reserve_percent)
      user            - SSH user for Ansible; defaults to var.default_user
      proxy_jump      - optional "user@host" jump host for machines without a reachable address
    Hosts without the dbd, portal or nfs role: those services go on the controller.
  EOT
  type = map(object({
    address         = string
    private_address = optional(string)
    roles           = list(string)
    cpus            = number
    memory_mb       = number
    user            = optional(string)
    proxy_jump      = optional(string)
  }))

  validation {
    condition     = alltrue([for name in keys(var.hosts) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", name))])
    error_message = "Host names must be lowercase hostnames (letters, digits and '-', at most 63 characters): they become Slurm node names."
  }

  validation {
    condition     = length([for h in values(var.hosts) : h if contains(h.roles, "controller")]) == 1
    error_message = "Exactly one host must have the \"controller\" role."
  }

  validation {
    condition     = length([for h in values(var.hosts) : h if contains(h.roles, "compute")]) >= 1
    error_message = "At least one host must have the \"compute\" role."
  }

  validation {
    condition     = alltrue([for h in values(var.hosts) : length(h.roles) > 0 && alltrue([for r in h.roles : contains(["controller", "compute", "dbd", "portal", "nfs"], r)])])
    error_message = "Every host needs at least one role, and roles must be among \"controller\", \"compute\", \"dbd\", \"portal\", \"nfs\"."
  }

  validation {
    condition = alltrue([
      for role in ["dbd", "nfs"] : length([for h in values(var.hosts) : h if contains(h.roles, role)]) <= 1
    ])
    error_message = "At most one host may have the \"dbd\" role and at most one the \"nfs\" role."
  }

  validation {
    condition = alltrue([
      for h in values(var.hosts) : h.cpus >= 1 && floor(h.cpus) == h.cpus && h.memory_mb >= 512 && floor(h.memory_mb) == h.memory_mb
    ])
    error_message = "Every host needs an integer cpus >= 1 and an integer memory_mb >= 512."
  }

  validation {
    condition     = alltrue([for h in values(var.hosts) : trimspace(h.address) != "" && (h.private_address == null ? true : trimspace(h.private_address) != "")])
    error_message = "Every host needs a non-empty address (and private_address, when given)."
  }
}

variable "default_user" {
  description = "SSH user Ansible logs in as on hosts that do not set their own user (the admin_user of the root module)."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.default_user))
    error_message = "The default_user must be a valid Unix user name."
  }
}

variable "memory_reserve_percent" {
  description = "Percentage of each host's memory_mb kept back from Slurm (RealMemory) for the OS and daemons. Cloud vendors quote more memory than the kernel reports, and slurmd drains a node whose RealMemory is too high."
  type        = number
  default     = 0

  validation {
    condition     = var.memory_reserve_percent >= 0 && var.memory_reserve_percent < 50
    error_message = "The memory_reserve_percent must be between 0 and 49."
  }
}

variable "source_name" {
  description = "Which root module produced the inventory (aws, gcp, openstack, existing_hosts); written to the inventory as cluster_provider."
  type        = string
  default     = "existing_hosts"

  validation {
    condition     = contains(["aws", "gcp", "openstack", "existing_hosts"], var.source_name)
    error_message = "The source_name must be one of aws, gcp, openstack, existing_hosts."
  }
}

variable "extra_vars" {
  description = "Extra variables for the whole cluster, written under all.vars (they cannot override the keys this module sets)."
  type        = map(string)
  default     = {}
}

variable "host_extra_vars" {
  description = "Extra per-host variables, keyed by host name (e.g. shared_storage_device for the NFS server)."
  type        = map(map(string))
  default     = {}

  validation {
    condition     = alltrue([for vars in values(var.host_extra_vars) : alltrue([for k in keys(vars) : !contains(["ansible_host", "ansible_user", "slurm_node_cpus", "slurm_node_real_memory_mb", "slurm_node_addr"], k)])])
    error_message = "The host_extra_vars cannot override ansible_host, ansible_user, slurm_node_addr, slurm_node_cpus or slurm_node_real_memory_mb."
  }
}
