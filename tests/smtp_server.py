"""Fixtures for a real smtp_server started by the suite (see the module body)."""
