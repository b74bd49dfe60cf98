"""modelyard.core"""
