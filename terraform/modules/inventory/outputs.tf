output "yaml" {
  description = "The Ansible inventory as a YAML document (all.vars, all.hosts with per-host vars, all.children groups)."
  value       = "${local.header}${yamlencode(local.inventory)}"
}

output "inventory" {
  description = "The same inventory as a Terraform object, for callers that want to inspect it."
  value       = local.inventory
}

output "groups" {
  description = "Group name -> sorted list of host names (slurm_controller, slurm_dbd, slurm_compute, nfs_server, nfs_clients, portal)."
  value       = local.all_groups
}

output "controller" {
  description = "Name of the controller host."
  value       = one(local.members.controller)
}
