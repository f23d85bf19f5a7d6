"""The portal's view of its Slurm cluster: the client built from settings, the admin overview."""
