# One customer-managed key encrypts every disk of the cluster.
resource "aws_kms_key" "cluster" {
  description             = "Disks of OpenLane Portal cluster ${var.cluster_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "cluster" {
  name          = "alias/${var.cluster_name}-disks"
  target_key_id = aws_kms_key.cluster.key_id
}

resource "aws_key_pair" "operator" {
  key_name   = "${var.cluster_name}-operator"
  public_key = module.design.ssh_public_key
}

resource "aws_instance" "controller" {
  #checkov:skip=CKV2_AWS_41:The machines call no AWS API; giving them no IAM role is the least privilege.
  ami                         = var.image
  instance_type               = var.controller.size
  availability_zone           = local.availability_zone
  subnet_id                   = local.public_subnet
  vpc_security_group_ids      = [aws_security_group.cluster.id, aws_security_group.controller.id]
  associate_public_ip_address = false
  key_name                    = aws_key_pair.operator.key_name
  user_data                   = module.design.cloud_init[module.design.controller_name]
  ebs_optimized               = true
  monitoring                  = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.controller.disk_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.cluster.arn
  }

  tags = { Name = module.design.controller_name, Role = "controller" }

  lifecycle {
    ignore_changes = [ami, user_data]

    precondition {
      condition     = startswith(var.image, "ami-")
      error_message = "On AWS, image must be an AMI id (ami-...)."
    }
  }
}

# The controller's stable public address (the only public address of the cluster).
resource "aws_eip" "controller" {
  domain   = "vpc"
  instance = aws_instance.controller.id

  tags = { Name = module.design.controller_name }

  depends_on = [aws_internet_gateway.cluster]
}

# /apps (images, PDKs) and the run root: exported by the controller over NFS.
resource "aws_ebs_volume" "shared" {
  availability_zone = local.availability_zone
  size              = var.shared_storage_gb
  type              = "gp3"
  encrypted         = true
  kms_key_id        = aws_kms_key.cluster.arn

  tags = { Name = "${var.cluster_name}-shared" }
}

resource "aws_volume_attachment" "shared" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.shared.id
  instance_id = aws_instance.controller.id
}

resource "aws_instance" "compute" {
  #checkov:skip=CKV2_AWS_41:The machines call no AWS API; giving them no IAM role is the least privilege.
  for_each = toset(module.design.compute_names)

  ami                         = var.image
  instance_type               = var.compute_size
  availability_zone           = local.availability_zone
  subnet_id                   = local.private_subnet
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  associate_public_ip_address = false
  key_name                    = aws_key_pair.operator.key_name
  user_data                   = module.design.cloud_init[each.key]
  ebs_optimized               = true
  monitoring                  = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.compute_disk_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.cluster.arn
  }

  tags = { Name = each.key, Role = "compute" }

  lifecycle {
    ignore_changes = [ami, user_data]
  }
}
