"""The web app as the NiceGUI `user` fixture loads it: settings from the test's environment."""

from fanout.settings import Settings
from web.factory import create_app

app = create_app(Settings())
