output "controller_name" {
  description = "Name of the controller machine (and its inventory/Slurm name)."
  value       = local.controller_name
}

output "compute_names" {
  description = "Names of the compute nodes, <cluster>-node-001 upwards; adding nodes appends names, so existing nodes keep theirs."
  value       = local.compute_names
}

output "ssh_public_key" {
  description = "The SSH public key itself (read from the file when a path was given)."
  value       = local.ssh_public_key
}

output "tags" {
  description = "Tags for AWS and OpenStack resources: the caller's tags plus the cluster's."
  value       = local.tags
}

output "labels" {
  description = "The same tags made valid as GCP labels."
  value       = local.labels
}

output "cloud_init" {
  description = "Machine name -> cloud-init user data (hostname, admin user with the SSH key)."
  value       = local.cloud_init
}
