# Provider-free: names, keys and boot-time configuration shared by the cloud
# roots are computed here with built-in functions, so they are tested offline.
terraform {
  required_version = ">= 1.6.0, < 2.0.0"
}
