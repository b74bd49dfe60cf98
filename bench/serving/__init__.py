"""Serving benchmark: InvokeEndpoint against MLflow, BentoML and a bare Starlette floor.

Run it with ``.venv/bin/python -m bench.serving`` (see ``__main__.py``).
"""
