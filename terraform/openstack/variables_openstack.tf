variable "region" {
  description = "OpenStack region. Null (default): the one of your clouds.yaml entry or OS_REGION_NAME. Credentials come from OS_CLOUD / OS_* variables, never from Terraform files."
  type        = string
  default     = null
}

variable "availability_zone" {
  description = "Availability zone of the machines and of the shared volume. Null (default): the cloud's default zone."
  type        = string
  default     = null
}

variable "external_network_name" {
  description = "Name of the provider's external (public) network: the router's gateway and the pool of the controller's floating IP."
  type        = string

  validation {
    condition     = trimspace(var.external_network_name) != ""
    error_message = "The external_network_name must not be empty."
  }
}

variable "volume_type" {
  description = "Cinder volume type of the shared volume. Use an encrypted type (LUKS) where your cloud offers one; null (default): the cloud's default type."
  type        = string
  default     = null
}
