# A new VPC (default) with a public subnet for the controller and a private one
# for the compute nodes, which reach the internet through a NAT gateway only.
# With network.existing_subnet_id, every machine goes into that subnet instead.

locals {
  create_network = var.network.existing_subnet_id == null
  vpc_id         = local.create_network ? aws_vpc.cluster[0].id : data.aws_subnet.existing[0].vpc_id
  vpc_cidr       = local.create_network ? aws_vpc.cluster[0].cidr_block : data.aws_vpc.existing[0].cidr_block
  public_subnet  = local.create_network ? aws_subnet.public[0].id : var.network.existing_subnet_id
  private_subnet = local.create_network ? aws_subnet.private[0].id : var.network.existing_subnet_id
}

data "aws_subnet" "existing" {
  count = local.create_network ? 0 : 1
  id    = var.network.existing_subnet_id
}

data "aws_vpc" "existing" {
  count = local.create_network ? 0 : 1
  id    = data.aws_subnet.existing[0].vpc_id
}

resource "aws_vpc" "cluster" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs need a log destination, retention and KMS policy chosen by the site; enable them per account policy (e.g. AWS Config / org-wide flow logs).
  count                = local.create_network ? 1 : 0
  cidr_block           = var.network.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.cluster_name}-vpc" }
}

# Take every rule away from the VPC's default security group: nothing uses it.
resource "aws_default_security_group" "cluster" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.cluster[0].id

  tags = { Name = "${var.cluster_name}-default-deny" }
}

resource "aws_subnet" "public" {
  count                   = local.create_network ? 1 : 0
  vpc_id                  = aws_vpc.cluster[0].id
  cidr_block              = cidrsubnet(var.network.cidr, 2, 0)
  availability_zone       = local.availability_zone
  map_public_ip_on_launch = false

  tags = { Name = "${var.cluster_name}-public" }
}

resource "aws_subnet" "private" {
  count                   = local.create_network ? 1 : 0
  vpc_id                  = aws_vpc.cluster[0].id
  cidr_block              = cidrsubnet(var.network.cidr, 2, 1)
  availability_zone       = local.availability_zone
  map_public_ip_on_launch = false

  tags = { Name = "${var.cluster_name}-private" }
}

resource "aws_internet_gateway" "cluster" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.cluster[0].id

  tags = { Name = "${var.cluster_name}-igw" }
}

resource "aws_eip" "nat" {
  #checkov:skip=CKV2_AWS_19:This Elastic IP belongs to the NAT gateway (outbound traffic of the private compute nodes), not to an instance.
  count  = local.create_network ? 1 : 0
  domain = "vpc"

  tags = { Name = "${var.cluster_name}-nat" }
}

resource "aws_nat_gateway" "cluster" {
  count         = local.create_network ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = { Name = "${var.cluster_name}-nat" }

  depends_on = [aws_internet_gateway.cluster]
}

resource "aws_route_table" "public" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.cluster[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.cluster[0].id
  }

  tags = { Name = "${var.cluster_name}-public" }
}

resource "aws_route_table" "private" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.cluster[0].id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.cluster[0].id
  }

  tags = { Name = "${var.cluster_name}-private" }
}

resource "aws_route_table_association" "public" {
  count          = local.create_network ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table_association" "private" {
  count          = local.create_network ? 1 : 0
  subnet_id      = aws_subnet.private[0].id
  route_table_id = aws_route_table.private[0].id
}
