"""modelyard.artifacts"""
