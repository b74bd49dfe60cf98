"""Tests of modelyard.artifacts: store conformance, the URI facade and archives."""
