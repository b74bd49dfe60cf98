"""modelyard.runtime"""
