"""Job actions. Importing this package registers every action module in it.

Adding an action type is one new module here: a pydantic params model and one function
decorated with `@action` (see `demo.py`). The API catalog, request validation, the dashboard form
and the worker pick it up with no other edit.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
