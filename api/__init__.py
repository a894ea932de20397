"""The FastAPI layer (see the API issue)."""
