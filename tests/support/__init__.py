"""Helpers shared by test packages: real servers started on 127.0.0.1 for integration tests."""
