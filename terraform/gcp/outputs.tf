output "controller_public_ip" {
  description = "Public IP of the controller: SSH, the portal, and the jump host to the compute nodes."
  value       = local.controller_ip
}

output "controller_private_ip" {
  description = "Private IP of the controller inside the cluster network."
  value       = google_compute_instance.controller.network_interface[0].network_ip
}

output "compute_private_ips" {
  description = "Compute node name -> private IP."
  value       = { for name, inst in google_compute_instance.compute : name => inst.network_interface[0].network_ip }
}

output "ssh_command" {
  description = "How to log in to the controller."
  value       = "ssh ${var.admin_user}@${local.controller_ip}"
}

output "inventory_path" {
  description = "Where the Ansible inventory was written."
  value       = local_file.inventory.filename
}

output "inventory_yaml" {
  description = "The Ansible inventory itself."
  value       = module.inventory.yaml
}
