# Inside the cluster every machine talks to every other (Slurm, munge, NFS,
# MariaDB, srun's ephemeral ports). From outside only the controller is
# reachable: SSH from ssh_allowed_cidrs and, if asked, HTTPS from
# web_allowed_cidrs. Outbound: the cluster network, NTP and egress_tcp_ports.

resource "aws_security_group" "cluster" {
  name        = "${var.cluster_name}-cluster"
  description = "OpenLane Portal cluster ${var.cluster_name}: traffic between its machines and limited outbound access"
  vpc_id      = local.vpc_id

  ingress {
    description = "Any traffic from the other machines of the cluster"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }

  egress {
    description = "Any traffic to the cluster network"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [local.vpc_cidr]
  }

  egress {
    description = "NTP"
    from_port   = 123
    to_port     = 123
    protocol    = "udp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  dynamic "egress" {
    for_each = toset(var.egress_tcp_ports)
    content {
      description = "Outbound TCP ${egress.value} (packages, images, mail)"
      from_port   = egress.value
      to_port     = egress.value
      protocol    = "tcp"
      cidr_blocks = ["0.0.0.0/0"]
    }
  }

  tags = { Name = "${var.cluster_name}-cluster" }
}

resource "aws_security_group" "controller" {
  name        = "${var.cluster_name}-controller"
  description = "OpenLane Portal cluster ${var.cluster_name}: SSH and optional HTTPS to the controller"
  vpc_id      = local.vpc_id

  ingress {
    description = "SSH from the operators' ranges"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = var.ssh_allowed_cidrs
  }

  dynamic "ingress" {
    for_each = length(var.web_allowed_cidrs) > 0 ? [1] : []
    content {
      description = "HTTPS to the portal"
      from_port   = 443
      to_port     = 443
      protocol    = "tcp"
      cidr_blocks = var.web_allowed_cidrs
    }
  }

  tags = { Name = "${var.cluster_name}-controller" }
}
