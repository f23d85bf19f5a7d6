output "inventory_yaml" {
  description = "The Ansible inventory. Write it out with: terraform output -raw inventory_yaml > inventory.yml"
  value       = module.inventory.yaml
}

output "groups" {
  description = "Group name -> host names, for a quick look."
  value       = module.inventory.groups
}

output "controller" {
  description = "Name of the controller host."
  value       = module.inventory.controller
}
