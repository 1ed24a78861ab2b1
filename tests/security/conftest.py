"""The attacks run against the same real stack as the API tests: a web app on a free port and a
real worker on the Temporal dev server."""

from tests.web.conftest import api  # noqa: F401  (the fixture, shared with tests/web)
