variables {
  cluster_name   = "olp"
  compute_count  = 3
  admin_user     = "clusteradmin"
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlmHfNn2WqGqkFmO9g0s9m1vzP3m7b3P3wX3tKQeS8e operator@example"
  tags           = { Project = "Tape Out 7" }
}

run "names_and_keys" {
  command = plan

  assert {
    condition     = output.controller_name == "olp-controller"
    error_message = "The controller must be <cluster>-controller."
  }
  assert {
    condition     = output.compute_names == ["olp-node-001", "olp-node-002", "olp-node-003"]
    error_message = "Compute nodes must be numbered from 001."
  }
  assert {
    condition     = startswith(output.ssh_public_key, "ssh-ed25519 ")
    error_message = "An inline key must be passed through."
  }
  assert {
    condition     = output.tags["openlane-portal-cluster"] == "olp" && output.tags["Project"] == "Tape Out 7"
    error_message = "Tags must merge the caller's with the cluster tag."
  }
  assert {
    condition     = output.labels["project"] == "tape_out_7"
    error_message = "GCP labels must be lowercased and sanitised."
  }
}

run "cloud_init_sets_hostname_and_admin" {
  command = plan

  assert {
    condition     = startswith(output.cloud_init["olp-node-002"], "#cloud-config\n")
    error_message = "User data must be a cloud-config document."
  }
  assert {
    condition     = yamldecode(output.cloud_init["olp-node-002"]).hostname == "olp-node-002"
    error_message = "Each machine must be named after its inventory host."
  }
  assert {
    condition     = yamldecode(output.cloud_init["olp-controller"]).users[1].name == "clusteradmin" && length(yamldecode(output.cloud_init["olp-controller"]).users[1].ssh_authorized_keys) == 1
    error_message = "The admin user must be created with the SSH key."
  }
  assert {
    condition     = length(output.cloud_init) == 4
    error_message = "There must be user data for the controller and every compute node."
  }
}

run "rejects_root_as_admin" {
  command = plan

  variables {
    admin_user = "root"
  }

  expect_failures = [var.admin_user]
}

run "rejects_a_key_that_is_neither_key_nor_file" {
  command = plan

  variables {
    ssh_public_key = "/nonexistent/id_ed25519.pub"
  }

  expect_failures = [var.ssh_public_key]
}

run "rejects_zero_compute_nodes" {
  command = plan

  variables {
    compute_count = 0
  }

  expect_failures = [var.compute_count]
}

run "reads_the_key_from_a_file" {
  command = plan

  variables {
    ssh_public_key = "tests/test_key.pub"
  }

  assert {
    condition     = output.ssh_public_key == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq2b1f0hEJ0o2ZcU4m2y3y1fV7C4m0d3bQmO3Jx5Xx7 test-fixture-not-a-real-key"
    error_message = "A path must be replaced by the (trimmed) key it holds."
  }
}
