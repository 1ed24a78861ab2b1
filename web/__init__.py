"""The web app: REST API, live streams and the dashboard (ASGI entry `web.app:app`)."""
