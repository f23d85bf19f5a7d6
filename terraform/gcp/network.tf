# A new VPC network with one subnetwork (default), Cloud NAT for the machines
# without a public address, and firewall rules by network tag. With
# network.existing_subnet_id the machines join that subnetwork instead.

locals {
  create_network = var.network.existing_subnet_id == null
  network        = local.create_network ? google_compute_network.cluster[0].self_link : data.google_compute_subnetwork.existing[0].network
  subnetwork     = local.create_network ? google_compute_subnetwork.cluster[0].self_link : data.google_compute_subnetwork.existing[0].self_link
  subnet_cidr    = local.create_network ? google_compute_subnetwork.cluster[0].ip_cidr_range : data.google_compute_subnetwork.existing[0].ip_cidr_range
  node_tag       = "${var.cluster_name}-node"
  controller_tag = "${var.cluster_name}-controller"
}

data "google_compute_subnetwork" "existing" {
  count     = local.create_network ? 0 : 1
  self_link = var.network.existing_subnet_id
}

resource "google_compute_network" "cluster" {
  count                   = local.create_network ? 1 : 0
  name                    = "${var.cluster_name}-net"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "cluster" {
  count                    = local.create_network ? 1 : 0
  name                     = "${var.cluster_name}-subnet"
  network                  = google_compute_network.cluster[0].self_link
  region                   = var.region
  ip_cidr_range            = var.network.cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "cluster" {
  count   = local.create_network ? 1 : 0
  name    = "${var.cluster_name}-router"
  region  = var.region
  network = google_compute_network.cluster[0].self_link
}

resource "google_compute_router_nat" "cluster" {
  count                              = local.create_network ? 1 : 0
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.cluster[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Ingress: anything between the cluster's machines; SSH (and optionally
# HTTPS) from outside to the controller only.
resource "google_compute_firewall" "internal" {
  name        = "${var.cluster_name}-internal"
  network     = local.network
  direction   = "INGRESS"
  source_tags = [local.node_tag]
  target_tags = [local.node_tag]
  priority    = 1000
  description = "Any traffic between the machines of cluster ${var.cluster_name}"

  allow {
    protocol = "all"
  }
}

resource "google_compute_firewall" "ssh" {
  name          = "${var.cluster_name}-ssh"
  network       = local.network
  direction     = "INGRESS"
  source_ranges = var.ssh_allowed_cidrs
  target_tags   = [local.controller_tag]
  description   = "SSH to the controller from the operators' ranges"

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_firewall" "https" {
  count         = length(var.web_allowed_cidrs) > 0 ? 1 : 0
  name          = "${var.cluster_name}-https"
  network       = local.network
  direction     = "INGRESS"
  source_ranges = var.web_allowed_cidrs
  target_tags   = [local.controller_tag]
  description   = "HTTPS to the portal on the controller"

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }
}

# Egress: the cluster network, NTP and egress_tcp_ports; everything else is
# denied (the metadata server is always reachable on GCP).
resource "google_compute_firewall" "egress_internal" {
  name               = "${var.cluster_name}-egress-internal"
  network            = local.network
  direction          = "EGRESS"
  destination_ranges = [local.subnet_cidr]
  target_tags        = [local.node_tag]
  priority           = 1000
  description        = "Any traffic to the cluster network"

  allow {
    protocol = "all"
  }
}

resource "google_compute_firewall" "egress_internet" {
  name               = "${var.cluster_name}-egress-internet"
  network            = local.network
  direction          = "EGRESS"
  destination_ranges = ["0.0.0.0/0"]
  target_tags        = [local.node_tag]
  priority           = 1000
  description        = "Packages, images and mail over the allowed TCP ports, and NTP"

  allow {
    protocol = "tcp"
    ports    = [for p in var.egress_tcp_ports : tostring(p)]
  }

  allow {
    protocol = "udp"
    ports    = ["123"]
  }
}

resource "google_compute_firewall" "egress_deny" {
  name               = "${var.cluster_name}-egress-deny"
  network            = local.network
  direction          = "EGRESS"
  destination_ranges = ["0.0.0.0/0"]
  target_tags        = [local.node_tag]
  priority           = 65000
  description        = "Deny every other outbound connection"

  deny {
    protocol = "all"
  }
}
