"""Slurm without Flask or a database: argv builders and parsers (commands, status), job
states, transports (local, sudo -u, SSH) and the client that batches every query."""
