variable "cluster_name" {
  description = "Name of the cluster; prefix of every machine name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.cluster_name))
    error_message = "The cluster_name must be 2-32 lowercase letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "compute_count" {
  description = "Number of compute nodes."
  type        = number

  validation {
    condition     = var.compute_count >= 1 && var.compute_count <= 999 && floor(var.compute_count) == var.compute_count
    error_message = "The compute_count must be an integer from 1 to 999."
  }
}

variable "admin_user" {
  description = "Administrative user created on every machine, with passwordless sudo and ssh_public_key."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user)) && var.admin_user != "root"
    error_message = "The admin_user must be a valid Unix user name other than root."
  }
}

variable "ssh_public_key" {
  description = "An OpenSSH public key, or the path of a file holding one (e.g. ~/.ssh/id_ed25519.pub)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\\.com) ", trimspace(var.ssh_public_key))) || fileexists(pathexpand(var.ssh_public_key))
    error_message = "The ssh_public_key must be an OpenSSH public key (ssh-ed25519 ..., ssh-rsa ..., ecdsa-...) or the path of an existing file that holds one."
  }
}

variable "tags" {
  description = "Tags (AWS, OpenStack metadata) or labels (GCP) put on every resource, on top of the cluster's own."
  type        = map(string)
  default     = {}
}
