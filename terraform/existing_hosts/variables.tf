variable "cluster_name" {
  description = "Name of the cluster; also the Slurm ClusterName (lowercase letters, digits, '-')."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.cluster_name))
    error_message = "The cluster_name must be 2-32 lowercase letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "admin_user" {
  description = "Default SSH user (with sudo) that Ansible logs in as; a host's own user wins."
  type        = string
  default     = "root"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user))
    error_message = "The admin_user must be a valid Unix user name."
  }
}

variable "hosts" {
  description = <<-EOT
    The machines, keyed by name (the name becomes the Slurm node name):
      address   - IP or DNS name Ansible connects to
      roles     - any of "controller" (exactly one), "compute" (one or more), "dbd", "portal", "nfs"
      cpus      - CPUs Slurm may use (as `slurmd -C` prints)
      memory_mb - RealMemory for Slurm in MiB (as `slurmd -C` prints)
      user      - SSH user for this host (default: admin_user)
      private_address - address the nodes use between themselves (default: address)
      proxy_jump      - "user@host" to reach this host through a jump host
    Without a "dbd", "nfs" or "portal" host, that service runs on the controller.
  EOT
  type = map(object({
    address         = string
    roles           = list(string)
    cpus            = number
    memory_mb       = number
    user            = optional(string)
    private_address = optional(string)
    proxy_jump      = optional(string)
  }))
}

variable "memory_reserve_percent" {
  description = "Percentage of memory_mb kept back from Slurm. 0 when memory_mb is what `slurmd -C` prints."
  type        = number
  default     = 0
}

variable "extra_vars" {
  description = "Extra cluster-wide Ansible variables written under all.vars."
  type        = map(string)
  default     = {}
}
