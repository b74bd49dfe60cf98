"""modelyard.cli"""
