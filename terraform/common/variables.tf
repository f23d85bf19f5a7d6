# The common interface of the cloud root modules. This is the only copy:
# aws/variables.tf, gcp/variables.tf and openstack/variables.tf are relative
# symlinks to it (tests/infra/test_terraform.py checks that; see ../README.md for
# why links and not a module). A tfvars file moves between clouds by changing
# only the sizes, the image and the provider-specific inputs, which live in
# variables_<provider>.tf.

variable "cluster_name" {
  description = "Name of the cluster: prefix of every resource and machine, and the Slurm ClusterName."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.cluster_name))
    error_message = "The cluster_name must be 2-32 lowercase letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "controller" {
  description = <<-EOT
    The controller machine: slurmctld, slurmdbd and MariaDB, the NFS server of
    /apps and the run root, the login node and the portal host. There is always
    exactly one (count is there to say so). size is an instance type (AWS), a
    machine type (GCP) or a flavor name (OpenStack); disk_gb is its boot disk.
  EOT
  type = object({
    count   = optional(number, 1)
    size    = string
    disk_gb = optional(number, 50)
  })

  validation {
    condition     = var.controller.count == 1
    error_message = "The controller count is fixed at 1."
  }

  validation {
    condition     = var.controller.disk_gb >= 20 && floor(var.controller.disk_gb) == var.controller.disk_gb
    error_message = "The controller disk_gb must be an integer of at least 20."
  }
}

variable "compute_count" {
  description = "Number of Slurm compute nodes. Raise it and re-run terraform apply and the playbook to add nodes."
  type        = number

  validation {
    condition     = var.compute_count >= 1 && var.compute_count <= 999 && floor(var.compute_count) == var.compute_count
    error_message = "The compute_count must be an integer from 1 to 999."
  }
}

variable "compute_size" {
  description = "Instance type (AWS), machine type (GCP) or flavor name (OpenStack) of the compute nodes. Its CPUs and memory become the Slurm node's CPUs and RealMemory."
  type        = string

  validation {
    condition     = trimspace(var.compute_size) != ""
    error_message = "The compute_size must not be empty."
  }
}

variable "compute_disk_gb" {
  description = "Boot disk size of each compute node, in GB (OpenLane runs write to the shared run root, not here)."
  type        = number
  default     = 50

  validation {
    condition     = var.compute_disk_gb >= 20 && floor(var.compute_disk_gb) == var.compute_disk_gb
    error_message = "The compute_disk_gb must be an integer of at least 20."
  }
}

variable "image" {
  description = "Operating system image of every machine: an AMI id (AWS), an image or family such as debian-cloud/debian-12 (GCP), an image name (OpenStack). The Ansible roles target Debian 12."
  type        = string

  validation {
    condition     = trimspace(var.image) != ""
    error_message = "The image must not be empty."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key of the operator, or the path of a file holding it (e.g. ~/.ssh/id_ed25519.pub). Installed for admin_user on every machine."
  type        = string

  validation {
    condition     = can(regex("^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\\.com) ", trimspace(var.ssh_public_key))) || fileexists(pathexpand(var.ssh_public_key))
    error_message = "The ssh_public_key must be an OpenSSH public key or the path of an existing file that holds one."
  }
}

variable "admin_user" {
  description = "Administrative user (passwordless sudo, ssh_public_key) created on every machine; Ansible logs in as this user."
  type        = string
  default     = "clusteradmin"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user)) && var.admin_user != "root"
    error_message = "The admin_user must be a valid Unix user name other than root."
  }
}

variable "network" {
  description = <<-EOT
    The cluster network. Either a new one with address range cidr (default), or
    an existing subnet: existing_subnet_id is a subnet id (AWS), a subnetwork
    self_link (GCP) or a subnet UUID (OpenStack); its own range is then used and
    cidr is ignored. An existing subnet must already give the machines outbound
    internet access (NAT) for package installation.
  EOT
  type = object({
    cidr               = optional(string, "10.42.0.0/16")
    existing_subnet_id = optional(string)
  })
  default = {}

  validation {
    condition     = can(cidrhost(var.network.cidr, 0)) && tonumber(split("/", var.network.cidr)[1]) >= 8 && tonumber(split("/", var.network.cidr)[1]) <= 24
    error_message = "The network cidr must be an IPv4 range with a prefix length from /8 to /24."
  }
}

variable "ssh_allowed_cidrs" {
  description = "Address ranges allowed to SSH to the controller (the only machine with a public address). No default: name your office or VPN range."
  type        = list(string)

  validation {
    condition     = length(var.ssh_allowed_cidrs) > 0 && alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "Give at least one valid CIDR range in ssh_allowed_cidrs."
  }
}

variable "web_allowed_cidrs" {
  description = "Address ranges allowed to reach the portal over HTTPS (port 443) on the controller. Empty (default): no web port is opened; reach the portal through an SSH tunnel."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.web_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "Every entry of web_allowed_cidrs must be a valid CIDR range."
  }
}

variable "egress_tcp_ports" {
  description = "TCP ports the machines may reach on the internet (packages and images over HTTP/HTTPS, mail submission). Everything inside the cluster network is always allowed, and so is NTP (UDP 123)."
  type        = list(number)
  default     = [80, 443, 587]

  validation {
    condition     = alltrue([for p in var.egress_tcp_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "The egress_tcp_ports must be port numbers from 1 to 65535."
  }
}

variable "shared_storage_gb" {
  description = "Size in GB of the disk attached to the controller and exported over NFS: /apps (images, PDKs) and the portal's run root."
  type        = number
  default     = 200

  validation {
    condition     = var.shared_storage_gb >= 20 && floor(var.shared_storage_gb) == var.shared_storage_gb
    error_message = "The shared_storage_gb must be an integer of at least 20."
  }
}

variable "memory_reserve_percent" {
  description = "Share of each machine's memory (as the cloud quotes it) kept back from Slurm's RealMemory for the OS, so that slurmd never finds less memory than configured."
  type        = number
  default     = 8

  validation {
    condition     = var.memory_reserve_percent >= 0 && var.memory_reserve_percent < 50
    error_message = "The memory_reserve_percent must be between 0 and 49."
  }
}

variable "tags" {
  description = "Tags (AWS), labels (GCP, made lowercase) or metadata (OpenStack) put on every resource, on top of the cluster's own."
  type        = map(string)
  default     = {}
}

variable "inventory_path" {
  description = "Where to write the Ansible inventory. Empty (default): <this folder>/<cluster_name>-inventory.yml."
  type        = string
  default     = ""
}
