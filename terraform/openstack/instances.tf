resource "openstack_compute_keypair_v2" "operator" {
  name       = "${var.cluster_name}-operator"
  public_key = module.design.ssh_public_key
}

resource "openstack_compute_instance_v2" "controller" {
  name              = module.design.controller_name
  image_name        = var.image
  flavor_name       = var.controller.size
  key_pair          = openstack_compute_keypair_v2.operator.name
  availability_zone = var.availability_zone
  user_data         = module.design.cloud_init[module.design.controller_name]
  metadata          = module.design.tags
  tags              = local.resource_tags

  # Boot from a volume of the requested size rather than the flavor's disk.
  block_device {
    source_type           = "image"
    uuid                  = data.openstack_images_image_v2.os.id
    destination_type      = "volume"
    volume_size           = var.controller.disk_gb
    boot_index            = 0
    delete_on_termination = true
  }

  network {
    port = openstack_networking_port_v2.controller.id
  }

  lifecycle {
    ignore_changes = [image_name, user_data, block_device[0].uuid]
  }
}

resource "openstack_compute_instance_v2" "compute" {
  for_each = toset(module.design.compute_names)

  name              = each.key
  image_name        = var.image
  flavor_name       = var.compute_size
  key_pair          = openstack_compute_keypair_v2.operator.name
  availability_zone = var.availability_zone
  user_data         = module.design.cloud_init[each.key]
  metadata          = module.design.tags
  tags              = local.resource_tags

  block_device {
    source_type           = "image"
    uuid                  = data.openstack_images_image_v2.os.id
    destination_type      = "volume"
    volume_size           = var.compute_disk_gb
    boot_index            = 0
    delete_on_termination = true
  }

  # No floating IP: compute nodes reach the internet through the router only.
  network {
    port = openstack_networking_port_v2.compute[each.key].id
  }

  lifecycle {
    ignore_changes = [image_name, user_data, block_device[0].uuid]
  }
}

data "openstack_images_image_v2" "os" {
  name        = var.image
  most_recent = true
}

# /apps (images, PDKs) and the run root: exported by the controller over NFS.
resource "openstack_blockstorage_volume_v3" "shared" {
  name              = "${var.cluster_name}-shared"
  description       = "/apps and the portal run root of cluster ${var.cluster_name}"
  size              = var.shared_storage_gb
  volume_type       = var.volume_type
  availability_zone = var.availability_zone
  metadata          = module.design.tags
}

resource "openstack_compute_volume_attach_v2" "shared" {
  instance_id = openstack_compute_instance_v2.controller.id
  volume_id   = openstack_blockstorage_volume_v3.shared.id
}
