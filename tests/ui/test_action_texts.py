"""An action type's own words in the dashboard's language: its description and its params'
labels and hints, English where it gives none."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User

pytestmark = pytest.mark.integration


def type_select(user: User) -> ui.select:
    (kind,) = [
        e
        for e in user.find(ui.select).elements
        if isinstance(e, ui.select) and "demo.sleep" in e.options
    ]
    return kind


def hint(user: User, label: str) -> str:
    (field,) = [e for e in user.find(label).elements if e.props.get("label") == label]
    return str(field.props["hint"])


async def test_in_portuguese_the_form_shows_a_built_in_types_own_words(alice: User) -> None:
    await alice.open("/jobs/new")
    await alice.should_see("Seconds")
    (language,) = [e for e in alice.find(ui.select).elements if e.props.get("label") == "Language"]
    language.value = "pt-BR"
    await alice.should_see("Conectado como alice", retries=50)  # the page reloads in Portuguese
    await alice.open("/jobs/new")
    kind = type_select(alice)
    options = kind.options
    assert isinstance(options, dict)
    assert options["demo.sleep"].startswith("demo.sleep — Espera um tempo")
    assert options["text.stats"] == (
        "text.stats — Conta linhas, palavras, caracteres e as palavras mais frequentes."
    )
    await alice.should_see("Segundos")
    await alice.should_see("Falhar nas primeiras tentativas")
    await alice.should_not_see("Seconds")
    assert hint(alice, "Segundos") == "Quanto tempo cada tentativa leva."
    kind.value = "text.stats"
    await alice.should_see("Texto")
    assert hint(alice, "Texto") == "O texto a analisar (até 1 MB)."
