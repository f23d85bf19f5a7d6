locals {
  key_is_inline = can(regex("^(ssh-|ecdsa-|sk-)", trimspace(var.ssh_public_key)))
  ssh_public_key = trimspace(
    local.key_is_inline ? var.ssh_public_key : file(pathexpand(var.ssh_public_key))
  )

  controller_name = "${var.cluster_name}-controller"
  compute_names   = [for i in range(var.compute_count) : format("%s-node-%03d", var.cluster_name, i + 1)]

  tags = merge(var.tags, {
    "openlane-portal-cluster" = var.cluster_name
    "managed-by"              = "terraform"
  })

  # GCP labels: lowercase letters, digits, '_' and '-', at most 63 characters.
  labels = {
    for k, v in local.tags :
    substr(lower(replace(k, "/[^a-zA-Z0-9_-]/", "_")), 0, 63) => substr(lower(replace(v, "/[^a-zA-Z0-9_-]/", "_")), 0, 63)
  }

  # cloud-init user data (AWS, OpenStack): the machine is named after its
  # inventory host (Slurm takes the node name from the hostname) and gets the
  # admin user Ansible logs in as.
  cloud_init = {
    for name in concat([local.controller_name], local.compute_names) : name => join("\n", [
      "#cloud-config",
      yamlencode({
        hostname          = name
        preserve_hostname = false
        ssh_pwauth        = false
        disable_root      = true
        users = [
          "default",
          {
            name                = var.admin_user
            gecos               = "OpenLane Portal cluster administration"
            groups              = ["sudo"]
            shell               = "/bin/bash"
            sudo                = "ALL=(ALL) NOPASSWD:ALL"
            lock_passwd         = true
            ssh_authorized_keys = [local.ssh_public_key]
          },
        ]
      }),
    ])
  }
}
