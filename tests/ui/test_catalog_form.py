"""The new-job form for a type of the action catalog: fields from its JSON Schema, problems
shown on the field they belong to, checked as the API checks them."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User

pytestmark = pytest.mark.integration


async def test_a_catalog_type_gets_its_fields_and_their_errors(alice: User) -> None:
    await alice.open("/jobs/new")
    (kind,) = [
        e
        for e in alice.find(ui.select).elements
        if isinstance(e, ui.select) and "demo.sleep" in e.options
    ]
    assert "text.reverse" in kind.options
    kind.value = "text.reverse"  # the params below follow the chosen type
    await alice.should_see("seconds")
    alice.find("seconds").clear().type("61")
    alice.find("Start job").click()
    await alice.should_see("Please fix the marked fields.")
    (text,) = [e for e in alice.find(kind=ui.textarea).elements if e.props.get("label") == "text"]
    (seconds,) = [
        e for e in alice.find(kind=ui.number).elements if e.props.get("label") == "seconds"
    ]
    assert isinstance(text, ui.textarea)
    assert isinstance(seconds, ui.number)
    assert text.error == "Field required"
    assert seconds.error == "61.0 is greater than the maximum of 60"  # a number field gives floats
