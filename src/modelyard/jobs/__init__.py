"""modelyard.jobs"""
