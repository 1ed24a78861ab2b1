"""`demo.blob`: a result of any size, the same bytes every time, to try the result store."""

import random

from pydantic import BaseModel, ConfigDict, Field

from activities.registry import ActionText, ResultBytes, action
from fanout.result_store import CONTENT_TYPE_PATTERN

MAX_SIZE = 256 << 20  # over the default cap (100 MiB), to show the limit


class BlobParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size_bytes: int = Field(1 << 20, ge=0, le=MAX_SIZE, description="How many bytes to return.")
    content_type: str = Field(
        "application/octet-stream",
        max_length=200,
        pattern=CONTENT_TYPE_PATTERN,
        description="The result's content type.",
    )
    seed: int = Field(0, ge=0, le=2**32, description="Another seed gives other bytes.")


def blob(size_bytes: int, seed: int = 0) -> bytes:
    """The bytes `demo.blob` returns: `random.Random(seed).randbytes(size_bytes)`."""
    return random.Random(seed).randbytes(size_bytes)


@action(
    "demo.blob",
    description="Returns size_bytes pseudo-random bytes (the same for a seed), a stored result.",
    max_attempts=3,
    timeout_s=300,
    texts={
        "pt-BR": ActionText(
            "Devolve size_bytes bytes pseudoaleatórios (os mesmos para uma semente), um "
            "resultado armazenado.",
            labels={
                "size_bytes": "Tamanho em bytes",
                "content_type": "Tipo de conteúdo",
                "seed": "Semente",
            },
            hints={
                "size_bytes": "Quantos bytes devolver.",
                "content_type": "O tipo de conteúdo do resultado.",
                "seed": "Outra semente dá outros bytes.",
            },
        )
    },
)
async def make_blob(params: BlobParams) -> ResultBytes:
    return ResultBytes(blob(params.size_bytes, params.seed), params.content_type)
