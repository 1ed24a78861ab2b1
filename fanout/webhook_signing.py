"""Each user's webhook signing secret, derived from the server's FANOUT_WEBHOOK_SECRET.

Nothing is stored: the worker that signs a delivery and the API that shows a user their secret
derive the same one. Changing FANOUT_WEBHOOK_SECRET changes every user's secret at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from fanout.settings import Settings

PURPOSE = b"fanout webhook signing secret\x00"


def user_secret(settings: Settings, user: str) -> str | None:
    """`whsec_…` (the Standard Webhooks form) for `user`, or None if the server has no key."""
    if settings.webhook_secret is None:
        return None
    key = settings.webhook_secret.get_secret_value().encode()
    digest = hmac.new(key, PURPOSE + user.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()
