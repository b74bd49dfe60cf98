"""modelyard.store"""
