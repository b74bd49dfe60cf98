"""modelyard.sdk"""
