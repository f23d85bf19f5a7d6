variable "region" {
  description = "AWS region, e.g. eu-west-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "availability_zone" {
  description = "Availability zone of every machine and of the shared disk (EBS volumes are zonal). Empty (default): zone 'a' of the region (e.g. eu-west-1a)."
  type        = string
  default     = ""

  validation {
    condition     = var.availability_zone == "" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", var.availability_zone))
    error_message = "The availability_zone must be empty or look like eu-west-1b."
  }
}
