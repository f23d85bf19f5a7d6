output "controller_public_ip" {
  description = "Floating IP of the controller: SSH, the portal, and the jump host to the compute nodes."
  value       = local.controller_ip
}

output "controller_private_ip" {
  description = "Private IP of the controller inside the cluster network."
  value       = openstack_networking_port_v2.controller.all_fixed_ips[0]
}

output "compute_private_ips" {
  description = "Compute node name -> private IP."
  value       = { for name, port in openstack_networking_port_v2.compute : name => port.all_fixed_ips[0] }
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
