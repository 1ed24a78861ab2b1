# One image for the worker and the web app; the command picks which:
#   python worker.py [--actions GLOB | --exclude GLOB]
#   uvicorn web.app:app --host 0.0.0.0 --port 8000
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NICEGUI_STORAGE_PATH=/tmp/fanout-sessions \
    FANOUT_DATA_DIR=/var/lib/fanout

WORKDIR /app

# Runtime dependencies only (no dev tools, no embedded dev server), exactly as locked, each file
# checked against its hash, in a layer of their own: rebuilt when the lock changes, not the code.
COPY requirements/runtime.lock ./
RUN pip install --require-hashes --no-deps -r runtime.lock && rm runtime.lock

COPY worker.py ./
COPY activities ./activities
COPY fanout ./fanout
COPY web ./web
COPY workflows ./workflows
# Bytecode now: the workflow sandbox, when on, re-imports the workflow modules for every new run.
RUN python -m compileall -q worker.py activities fanout web workflows

# The one directory the app writes (users' default webhooks, stored results without S3), the
# user's own: /app and the code in it belong to root. A named volume mounted there starts so.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fanout \
 && install -d -o fanout -g fanout -m 700 /var/lib/fanout
USER fanout

EXPOSE 8000 9000
CMD ["uvicorn", "web.app:app", "--host", "0.0.0.0", "--port", "8000"]
