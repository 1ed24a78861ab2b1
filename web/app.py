"""ASGI entry point: `uvicorn web.app:app` (the API and the dashboard, from FANOUT_* settings)."""

from web.factory import create_app

app = create_app()
