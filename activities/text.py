"""`text.stats`: counts lines, words and characters and finds the most frequent words."""

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from activities.registry import ActionText, action

WORD = re.compile(r"\w+")
TOP_WORDS = 10


class TextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=1_000_000, description="The text to analyse (up to 1 MB).")


@action(
    "text.stats",
    description="Counts lines, words, characters and the most frequent words.",
    local=True,
    texts={
        "pt-BR": ActionText(
            "Conta linhas, palavras, caracteres e as palavras mais frequentes.",
            labels={"text": "Texto"},
            hints={"text": "O texto a analisar (até 1 MB)."},
        )
    },
)
async def stats(params: TextParams) -> dict[str, Any]:
    words = WORD.findall(params.text.lower())
    return {
        "lines": len(params.text.splitlines()),
        "words": len(words),
        "characters": len(params.text),
        "top_words": [[word, n] for word, n in Counter(words).most_common(TOP_WORDS)],
    }
