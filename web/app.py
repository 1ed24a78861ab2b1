"""ASGI entry point: `uvicorn web.app:app`."""

from fastapi import FastAPI

app = FastAPI(title="Fanout", summary="Run many background actions per request, watch them live.")


@app.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is alive (it does not check Temporal)."""
    return {"status": "ok"}
