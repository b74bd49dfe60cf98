"""modelyard: a self-hostable machine-learning platform that speaks SageMaker's API."""

__version__ = "0.1.0"

