"""Job actions. Importing this package registers every action module in it.

Adding an action type is one new module here: a pydantic params model and one function
decorated with `@action` (see `demo.py`). The API catalog, request validation, the dashboard form
and the worker pick it up with no other edit. Types served by workers in other languages come
from the action catalog file (`catalog.py`, FANOUT_ACTIONS_CATALOG), read last.
"""

import importlib
import pkgutil

from fanout.settings import settings

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from activities import catalog  # noqa: E402  (after every Python type: names must not clash)

try:
    catalog.register(settings.actions_catalog)
except catalog.CatalogError as _err:
    # Every process that serves or checks jobs imports this package first: each stops at once
    # with the sentence, not a traceback.
    raise SystemExit(str(_err)) from None
