"""``@hookimpl(wrapper=True)`` (and the old ``hookwrapper=True``) cannot work with the gateway's own
hook runner, which calls and awaits every implementation itself: registering one is refused with
an error that says so, and leaves the gateway as it was."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from rec_llm_gateway import Gateway, hookimpl

CONFIG = {"providers": {"echo": {"type": "echo"}}}


class Wrapper:
    @hookimpl(wrapper=True)
    def post_response(self, request: Any, response: Any, context: Any) -> Generator[None, Any, Any]:
        return (yield)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def on_error(self, error: Any, context: Any) -> Generator[None, Any, None]:
        yield


class Plain:
    @hookimpl
    def post_response(self, request: Any, response: Any, context: Any) -> None:
        pass


@pytest.mark.parametrize("plugin", [Wrapper(), OldStyleWrapper()], ids=["wrapper", "hookwrapper"])
def test_wrappers_are_refused_at_registration(plugin: object) -> None:
    gateway = Gateway(CONFIG)
    with pytest.raises(pluggy.PluginValidationError, match="not supported by rec_llm_gateway hooks"):
        gateway.register(plugin)
    assert not gateway.plugins.is_registered(plugin)
    assert not gateway.hooks.has("post_response") and not gateway.hooks.has("on_error")
    with pytest.raises(pluggy.PluginValidationError, match="wrapper=True"):
        Gateway(CONFIG, plugins=[plugin])


def test_plain_implementations_still_register() -> None:
    gateway = Gateway(CONFIG, plugins=[Plain()])
    assert gateway.hooks.has("post_response")
