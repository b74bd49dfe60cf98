"""modelyard.compute"""
