output "controller_public_ip" {
  description = "Public (Elastic) IP of the controller: SSH, the portal, and the jump host to the compute nodes."
  value       = aws_eip.controller.public_ip
}

output "controller_private_ip" {
  description = "Private IP of the controller inside the cluster network."
  value       = aws_instance.controller.private_ip
}

output "compute_private_ips" {
  description = "Compute node name -> private IP."
  value       = { for name, inst in aws_instance.compute : name => inst.private_ip }
}

output "ssh_command" {
  description = "How to log in to the controller."
  value       = "ssh ${var.admin_user}@${aws_eip.controller.public_ip}"
}

output "inventory_path" {
  description = "Where the Ansible inventory was written."
  value       = local_file.inventory.filename
}

output "inventory_yaml" {
  description = "The Ansible inventory itself."
  value       = module.inventory.yaml
}
