"""Delivering export files: targets (outbox, SFTP, dry run), the ledger, delivered state, problems."""
