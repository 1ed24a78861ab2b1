"""ASGI entry point: `uvicorn web.app:app` (the API and the dashboard, from FANOUT_* settings)."""

from fanout import tracing
from fanout.logs import configure_logging
from fanout.settings import settings
from web.factory import create_app

configure_logging(settings)
try:
    tracing.configure("fanout-web")
except ValueError as err:  # one line, not uvicorn's traceback of an import
    raise SystemExit(str(err)) from None
app = create_app(settings)
