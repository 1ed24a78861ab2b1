"""The web app as the `user` fixture of tests/ui/conftest.py loads it, with the test's settings."""

from tests.ui import app_settings
from web.factory import create_app

if app_settings.current is None:
    raise RuntimeError("tests/ui/app_main.py is loaded by the `user` fixture, which sets settings")
app = create_app(app_settings.current)
