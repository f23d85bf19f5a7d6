# No provider: this root only renders the inventory of machines that already
# exist, so it plans, applies and tests offline.
terraform {
  required_version = ">= 1.6.0, < 2.0.0"
}
