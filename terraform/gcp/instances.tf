# The machines run as a dedicated service account that may only write logs and
# metrics, not as the project's default Compute Engine account.
resource "google_service_account" "node" {
  account_id   = "${substr(var.cluster_name, 0, 22)}-node"
  display_name = "OpenLane Portal cluster ${var.cluster_name} machines"
}

resource "google_project_iam_member" "node_logging" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.node.email}"
}

resource "google_project_iam_member" "node_monitoring" {
  project = var.project
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.node.email}"
}

locals {
  node_metadata = {
    # Only this key (for admin_user) may log in; project-wide keys are refused.
    ssh-keys               = "${var.admin_user}:${module.design.ssh_public_key}"
    block-project-ssh-keys = "true"
    serial-port-enable     = "false"
  }
}

# /apps (images, PDKs) and the run root: exported by the controller over NFS.
resource "google_compute_disk" "shared" {
  #checkov:skip=CKV_GCP_37:Disks are always encrypted at rest; customer-managed keys are used when var.kms_key_self_link is set, customer-supplied raw keys are not (they would have to live in the Terraform state).
  name = "${var.cluster_name}-shared"
  type = "pd-balanced"
  zone = var.zone
  size = var.shared_storage_gb

  dynamic "disk_encryption_key" {
    for_each = var.kms_key_self_link == null ? [] : [var.kms_key_self_link]
    content {
      kms_key_self_link = disk_encryption_key.value
    }
  }
}

# The controller's stable public address (the only public address of the cluster).
resource "google_compute_address" "controller" {
  name         = "${var.cluster_name}-controller"
  region       = var.region
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
}

resource "google_compute_instance" "controller" {
  #checkov:skip=CKV_GCP_40:The controller is the cluster's login node and bastion: its public address is the single way in, limited to ssh_allowed_cidrs and web_allowed_cidrs by the firewall.
  #checkov:skip=CKV_GCP_38:Boot disks are always encrypted at rest; customer-managed keys are used when var.kms_key_self_link is set, customer-supplied raw keys are not (they would have to live in the Terraform state).
  name           = module.design.controller_name
  machine_type   = var.controller.size
  zone           = var.zone
  tags           = [local.node_tag, local.controller_tag]
  can_ip_forward = false
  metadata       = local.node_metadata

  boot_disk {
    kms_key_self_link = var.kms_key_self_link

    initialize_params {
      image = var.image
      size  = var.controller.disk_gb
      type  = "pd-balanced"
    }
  }

  attached_disk {
    source      = google_compute_disk.shared.self_link
    device_name = "shared"
    mode        = "READ_WRITE"
  }

  network_interface {
    subnetwork = local.subnetwork

    access_config {
      nat_ip       = google_compute_address.controller.address
      network_tier = "PREMIUM"
    }
  }

  service_account {
    email  = google_service_account.node.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  lifecycle {
    ignore_changes = [boot_disk[0].initialize_params[0].image]
  }
}

resource "google_compute_instance" "compute" {
  #checkov:skip=CKV_GCP_38:Boot disks are always encrypted at rest; customer-managed keys are used when var.kms_key_self_link is set, customer-supplied raw keys are not (they would have to live in the Terraform state).
  for_each = toset(module.design.compute_names)

  name           = each.key
  machine_type   = var.compute_size
  zone           = var.zone
  tags           = [local.node_tag]
  can_ip_forward = false
  metadata       = local.node_metadata

  boot_disk {
    kms_key_self_link = var.kms_key_self_link

    initialize_params {
      image = var.image
      size  = var.compute_disk_gb
      type  = "pd-balanced"
    }
  }

  # No access_config: compute nodes have no public address (outbound via Cloud NAT).
  network_interface {
    subnetwork = local.subnetwork
  }

  service_account {
    email  = google_service_account.node.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  lifecycle {
    ignore_changes = [boot_disk[0].initialize_params[0].image]
  }
}
