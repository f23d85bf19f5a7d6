# Provider-free on purpose: this module only renders text with built-in
# functions, so it can be initialised, validated and tested offline and is
# shared by every provider root module (aws, gcp, openstack, existing_hosts).
terraform {
  required_version = ">= 1.6.0, < 2.0.0"
}
