# A new network + subnet behind a router to the external network (default): the
# router gives every machine outbound access, the controller alone gets a
# floating IP. With network.existing_subnet_id the machines join that subnet.

locals {
  create_network = var.network.existing_subnet_id == null
  network_id     = local.create_network ? openstack_networking_network_v2.cluster[0].id : data.openstack_networking_subnet_v2.existing[0].network_id
  subnet_id      = local.create_network ? openstack_networking_subnet_v2.cluster[0].id : var.network.existing_subnet_id
  subnet_cidr    = local.create_network ? openstack_networking_subnet_v2.cluster[0].cidr : data.openstack_networking_subnet_v2.existing[0].cidr
}

data "openstack_networking_network_v2" "external" {
  name     = var.external_network_name
  external = true
}

data "openstack_networking_subnet_v2" "existing" {
  count     = local.create_network ? 0 : 1
  subnet_id = var.network.existing_subnet_id
}

resource "openstack_networking_network_v2" "cluster" {
  count          = local.create_network ? 1 : 0
  name           = "${var.cluster_name}-net"
  admin_state_up = true
  tags           = local.resource_tags
}

resource "openstack_networking_subnet_v2" "cluster" {
  count      = local.create_network ? 1 : 0
  name       = "${var.cluster_name}-subnet"
  network_id = openstack_networking_network_v2.cluster[0].id
  cidr       = var.network.cidr
  ip_version = 4
  tags       = local.resource_tags
}

resource "openstack_networking_router_v2" "cluster" {
  count               = local.create_network ? 1 : 0
  name                = "${var.cluster_name}-router"
  external_network_id = data.openstack_networking_network_v2.external.id
  tags                = local.resource_tags
}

resource "openstack_networking_router_interface_v2" "cluster" {
  count     = local.create_network ? 1 : 0
  router_id = openstack_networking_router_v2.cluster[0].id
  subnet_id = openstack_networking_subnet_v2.cluster[0].id
}

# Security groups start empty (no default egress): every allowed flow is listed.
resource "openstack_networking_secgroup_v2" "cluster" {
  name                 = "${var.cluster_name}-cluster"
  description          = "OpenLane Portal cluster ${var.cluster_name}: traffic between its machines and limited outbound access"
  delete_default_rules = true
  tags                 = local.resource_tags
}

resource "openstack_networking_secgroup_rule_v2" "internal_in" {
  description       = "Any traffic from the other machines of the cluster"
  direction         = "ingress"
  ethertype         = "IPv4"
  remote_group_id   = openstack_networking_secgroup_v2.cluster.id
  security_group_id = openstack_networking_secgroup_v2.cluster.id
}

resource "openstack_networking_secgroup_rule_v2" "internal_out" {
  description       = "Any traffic to the cluster network"
  direction         = "egress"
  ethertype         = "IPv4"
  remote_ip_prefix  = local.subnet_cidr
  security_group_id = openstack_networking_secgroup_v2.cluster.id
}

resource "openstack_networking_secgroup_rule_v2" "ntp_out" {
  description       = "NTP"
  direction         = "egress"
  ethertype         = "IPv4"
  protocol          = "udp"
  port_range_min    = 123
  port_range_max    = 123
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.cluster.id
}

resource "openstack_networking_secgroup_rule_v2" "dns_out" {
  for_each          = toset(["tcp", "udp"])
  description       = "DNS (the subnet's resolvers may be outside the cluster network)"
  direction         = "egress"
  ethertype         = "IPv4"
  protocol          = each.key
  port_range_min    = 53
  port_range_max    = 53
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.cluster.id
}

resource "openstack_networking_secgroup_rule_v2" "tcp_out" {
  for_each          = toset([for p in var.egress_tcp_ports : tostring(p)])
  description       = "Outbound TCP ${each.key} (packages, images, mail)"
  direction         = "egress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = tonumber(each.key)
  port_range_max    = tonumber(each.key)
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.cluster.id
}

resource "openstack_networking_secgroup_v2" "controller" {
  name                 = "${var.cluster_name}-controller"
  description          = "OpenLane Portal cluster ${var.cluster_name}: SSH and optional HTTPS to the controller"
  delete_default_rules = true
  tags                 = local.resource_tags
}

resource "openstack_networking_secgroup_rule_v2" "ssh_in" {
  for_each          = toset(var.ssh_allowed_cidrs)
  description       = "SSH from the operators' ranges"
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = each.key
  security_group_id = openstack_networking_secgroup_v2.controller.id
}

resource "openstack_networking_secgroup_rule_v2" "https_in" {
  for_each          = toset(var.web_allowed_cidrs)
  description       = "HTTPS to the portal"
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 443
  port_range_max    = 443
  remote_ip_prefix  = each.key
  security_group_id = openstack_networking_secgroup_v2.controller.id
}

resource "openstack_networking_port_v2" "controller" {
  name               = module.design.controller_name
  network_id         = local.network_id
  admin_state_up     = true
  security_group_ids = [openstack_networking_secgroup_v2.cluster.id, openstack_networking_secgroup_v2.controller.id]
  tags               = local.resource_tags

  fixed_ip {
    subnet_id = local.subnet_id
  }
}

resource "openstack_networking_port_v2" "compute" {
  for_each           = toset(module.design.compute_names)
  name               = each.key
  network_id         = local.network_id
  admin_state_up     = true
  security_group_ids = [openstack_networking_secgroup_v2.cluster.id]
  tags               = local.resource_tags

  fixed_ip {
    subnet_id = local.subnet_id
  }
}

# The controller's public address (the only public address of the cluster).
resource "openstack_networking_floatingip_v2" "controller" {
  pool        = var.external_network_name
  description = "${module.design.controller_name} (SSH, portal, jump host)"
  tags        = local.resource_tags
}

resource "openstack_networking_floatingip_associate_v2" "controller" {
  floating_ip = openstack_networking_floatingip_v2.controller.address
  port_id     = openstack_networking_port_v2.controller.id

  depends_on = [openstack_networking_router_interface_v2.cluster]
}
