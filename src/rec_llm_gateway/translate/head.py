"""``ResponseHead``: what every writer knows about the response as a whole (its id, model and time)."""

from __future__ import annotations

import time

__all__ = ["ResponseHead"]


class ResponseHead:
    """The response's ``id``, ``model`` and ``created``; the upstream may name the first two late
    (in its first event), which ``identify`` takes.

    Args:
        response_id, model: known up front, or "" until ``identify``.
        created: the ``created`` timestamp (default: now).
    """

    __slots__ = ("created", "id", "model")

    def __init__(self, response_id: str = "", model: str = "", created: int | None = None) -> None:
        self.id = response_id
        self.model = model
        self.created = int(time.time()) if created is None else created

    def identify(self, response_id: str | None, model: str | None) -> None:
        if response_id:
            self.id = response_id
        if model:
            self.model = model
