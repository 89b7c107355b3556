"""The HTTP side of an MN: falcon (ASGI) under gunicorn."""
