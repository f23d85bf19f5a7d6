variable "project" {
  description = "GCP project id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "The project must be a GCP project id (6-30 lowercase letters, digits, '-')."
  }
}

variable "region" {
  description = "GCP region, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "The region must look like europe-west1."
  }
}

variable "zone" {
  description = "Zone of every machine and of the shared disk (persistent disks are zonal), e.g. europe-west1-b. It must be in region."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "The zone must look like europe-west1-b."
  }
}

variable "kms_key_self_link" {
  description = "Optional Cloud KMS key (projects/.../cryptoKeys/...) to encrypt every disk with (CMEK). The Compute Engine service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it. Null (default): Google-managed encryption, which is always on."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_self_link == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_self_link))
    error_message = "The kms_key_self_link must be null or projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>."
  }
}
