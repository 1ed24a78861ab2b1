"""`fanout`: the command-line client of the Fanout API (FANOUT_URL, FANOUT_TOKEN).

fanout submit -a demo.sleep:'{"seconds": 3}' -a text.stats:'{"text": "hi"}' --watch
fanout watch JOB_ID    # live; exit code = outcome: 0 completed, 1 failed, 3 cancelled
fanout submit --title "Monthly report for ACME" -a text.stats:'{"text": "hi"}' --label team=ops
fanout list --status FAILED
fanout list --search report --label team=ops
fanout retry JOB_ID --watch
fanout result JOB_ID 'demo.blob#1' -o blob.bin   # an action's whole result
fanout worker --actions 'http.*'   # the worker (python worker.py), and `fanout web`: the web app
"""

from __future__ import annotations

import enum
import json
import random
import sys
import time
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from httpx_sse import SSEError, connect_sse
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

app = typer.Typer(help="Start and watch Fanout jobs.", pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)

EXIT = {"COMPLETED": 0, "FAILED": 1, "CANCELLED": 3}
EXIT_USAGE = 2  # click's own code for a bad option or argument
EXIT_API_ERROR = 4
STATUS_STYLE = {
    "PENDING": "dim",
    "RUNNING": "cyan",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
}

Url = Annotated[str, typer.Option(envvar="FANOUT_URL", help="Fanout web app.")]
Token = Annotated[
    str, typer.Option(envvar="FANOUT_TOKEN", help="Your API key.", show_default=False)
]
JobIdArg = Annotated[str, typer.Argument(help="The job's id.")]


class Format(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"


FormatOpt = Annotated[
    Format,
    typer.Option(
        "--output", "-o", help="text for people; json, or jsonl (one object a line) for scripts."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --output json.")]


def _format(output: Format, as_json: bool) -> Format:
    return Format.JSON if as_json else output


def _emit(data: Any, output: Format) -> None:
    """`data` as one JSON document, or (a list) as JSON lines: one item a line."""
    if output is Format.JSON:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        items = data if isinstance(data, list) else [data]
        text = "\n".join(json.dumps(item, ensure_ascii=False) for item in items)
    if text:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _print_version(value: bool) -> None:
    if value:
        out.print(f"fanout {package_version('fanout')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Start and watch Fanout jobs."""


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _fail(message: str, code: int = EXIT_API_ERROR) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _call(url: str, token: str, method: str, path: str, **kwargs: Any) -> Any:
    try:
        with _client(url, token) as http:
            response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {url}: {exc}")
    if response.is_error:
        _fail(f"{response.status_code}: {_detail(response)}")
    return response.json()


def _parse_action(text: str) -> dict[str, Any]:
    kind, _, params = text.partition(":")
    action: dict[str, Any] = {"type": kind}
    if params:
        try:
            action["params"] = json.loads(params)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(
                f"the params of {kind!r} are not JSON ({exc.msg} at column {exc.colno}):"
                f' write {kind}:\'{{"key": "value"}}\'',
                param_hint="--action",
            ) from None
    return action


@app.command()
def submit(
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    action: Annotated[
        list[str] | None,
        typer.Option("--action", "-a", help="TYPE or TYPE:PARAMS_JSON; repeat for more."),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A JSON job request ('-' for stdin).")
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="A short human name, e.g. 'Monthly report for ACME'.")
    ] = None,
    fail_fast: Annotated[bool, typer.Option(help="Cancel the rest at the first failure.")] = False,
    tolerate: Annotated[int, typer.Option(help="Failures a COMPLETED job may have.")] = 0,
    max_parallel: Annotated[int | None, typer.Option(help="Actions running at once.")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value; repeatable.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same job.")] = None,
    watch_job: Annotated[bool, typer.Option("--watch", "-w", help="Then watch it live.")] = False,
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """Start a job from --action flags or a JSON file; prints its id (with -o json, the
    API's answer; with --watch -o json, only the job's final state)."""
    output = _format(output, as_json)
    body = _read_request(file) if file is not None else {}
    body.setdefault("actions", [])
    body["actions"] += [_parse_action(a) for a in action or []]
    if not body["actions"]:
        raise typer.BadParameter(
            "give at least one --action or a --file with actions", param_hint="--action"
        )
    if title is not None:
        body["title"] = title
    if fail_fast:
        body["failure_policy"] = "fail_fast"
    if tolerate:
        body["tolerated_failures"] = tolerate
    if max_parallel:
        body["max_parallel"] = max_parallel
    for pair in label or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--label")
        body.setdefault("labels", {})[key] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    accepted = _call(url, token, "POST", "/api/jobs", json=body, headers=headers)
    if output is Format.TEXT:
        out.print(accepted["job_id"], highlight=False)
    elif output is Format.JSONL or not watch_job:
        _emit(accepted, output)
    if watch_job:
        watch(accepted["job_id"], url, token, output)


def _read_request(file: Path) -> dict[str, Any]:
    """The job request in `file` ('-': standard input), or a usage error that says what to fix."""
    name = "standard input" if str(file) == "-" else str(file)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {name} ({exc.strerror}): give the path of a JSON job request",
            param_hint="--file",
        ) from None
    except UnicodeDecodeError:
        raise typer.BadParameter(
            f"{name} is not UTF-8 text: give a JSON job request", param_hint="--file"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{name} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            param_hint="--file",
        ) from None
    if not isinstance(body, dict):
        raise typer.BadParameter(
            f'{name} holds JSON but not an object: write {{"actions": [...]}}',
            param_hint="--file",
        )
    return body


@app.command()
def status(
    job_id: JobIdArg,
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """Show a job's status and every action."""
    job = _call(url, token, "GET", f"/api/jobs/{job_id}")
    if (output := _format(output, as_json)) is not Format.TEXT:
        _emit(job, output)
        return
    out.print(_job_table(job))


@app.command()
def watch(
    job_id: JobIdArg,
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
    give_up_after: Annotated[
        float, typer.Option(help="Seconds without a connection before giving up (exit 4).")
    ] = 300,
) -> None:
    """Follow a job live until it ends, reconnecting while the web app is away; the exit code
    is its outcome (-o json: its final state; -o jsonl: every state as it arrives)."""
    output = _format(output, as_json)
    view = _JobProgress(out, output)
    with _client(url, token) as http, view:
        job = _follow(http, job_id, view, give_up_after)
    if output is Format.JSON:
        _emit(job, output)
    elif output is Format.TEXT:
        out.print(f"Job {job_id} {job['status']}: {_counts(job)}", highlight=False)
    raise typer.Exit(EXIT.get(job["status"], EXIT_API_ERROR))


def _follow(
    http: httpx.Client, job_id: str, view: _JobProgress, give_up_after: float
) -> dict[str, Any]:
    """The job's states from its event stream until it ends: a dropped stream, a refused
    connection or a 5xx is retried, after the server's `retry:` hint or a growing backoff, and
    resumed with `Last-Event-ID` so no state is missed."""
    job: dict[str, Any] | None = None
    last_id: str | None = None
    retry_hint: float | None = None  # seconds, from the stream's `retry:` field
    failures = 0
    lost_at = time.monotonic()  # when the last stream ended (or when we began)
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        wait: float | None = None
        connected = False
        try:
            with connect_sse(
                http, "GET", f"/api/jobs/{quote(job_id, safe='')}/events", headers=headers,
                timeout=httpx.Timeout(30, read=None),
            ) as source:  # fmt: skip
                response = source.response
                if response.status_code >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise httpx.TransportError(f"{response.status_code}")
                if response.is_error:
                    response.read()
                    _fail(f"{response.status_code}: {_detail(response)}")
                connected = True
                for event in source.iter_sse():
                    if event.retry is not None:
                        retry_hint = event.retry / 1000
                    if not event.data:  # a keep-alive comment
                        continue
                    job, last_id = event.json(), event.id or last_id
                    failures = 0
                    view.update(job)
        except (httpx.TransportError, SSEError):
            pass
        if job is not None and job["status"] in EXIT:
            return job
        if connected:
            lost_at = time.monotonic()
        elif time.monotonic() - lost_at > give_up_after:
            _fail(f"no stream from the web app for {give_up_after:g} s; the job may still run")
        failures += 1
        if wait is None:
            wait = retry_hint if retry_hint is not None else min(0.25 * 2**failures, 10.0)
        time.sleep(wait * random.uniform(1.0, 1.25))  # jitter: many watchers, not one burst


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text


@app.command("list")
def list_jobs(
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    status_filter: Annotated[str | None, typer.Option("--status", help="e.g. FAILED")] = None,
    search: Annotated[
        str | None,
        typer.Option(help="Words of the title, the start of a job id, or a key=value label."),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="key=value: only jobs with it; repeatable (all).")
    ] = None,
    page_size: int = 20,
    page_token: str | None = None,
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """List your jobs, running ones first (-o json: the page with its next_page_token;
    -o jsonl: one job a line, the next page's token on stderr)."""
    params: dict[str, Any] = {"page_size": page_size}
    if status_filter:
        params["status"] = status_filter.upper()
    if search:
        params["q"] = search
    if label:
        params["label"] = label
    if page_token:
        params["page_token"] = page_token
    page = _call(url, token, "GET", "/api/jobs", params=params)
    if (output := _format(output, as_json)) is not Format.TEXT:
        _emit(page if output is Format.JSON else page["jobs"], output)
        if output is Format.JSONL and page["next_page_token"]:
            err.print(f"more: --page-token {page['next_page_token']}", highlight=False)
        return
    rows = [("JOB", "STATUS", "DONE", "ACTIONS", "CREATED", "FINISHED", "TITLE")] + [
        (
            job["job_id"],
            job["status"],
            f"{job['percent']}%",
            str(job["action_count"]),
            _local_time(job["created_at"]),
            _local_time(job["finished_at"]),
            job.get("title") or "",
        )
        for job in page["jobs"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:  # plain columns: nothing truncated, easy to grep and copy
        out.print(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if page["next_page_token"]:
        out.print(f"more: --page-token {page['next_page_token']}", highlight=False, soft_wrap=True)


@app.command()
def cancel(
    job_id: JobIdArg,
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a running job."""
    accepted = _call(url, token, "POST", f"/api/jobs/{job_id}/cancel")
    if (output := _format(output, as_json)) is not Format.TEXT:
        _emit(accepted, output)
        return
    out.print(f"Cancelling {job_id}.", highlight=False)


@app.command()
def retry(
    job_id: JobIdArg,
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    watch_job: Annotated[bool, typer.Option("--watch", "-w", help="Then watch it live.")] = False,
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """Run a FAILED or CANCELLED job's unfinished actions again."""
    accepted = _call(url, token, "POST", f"/api/jobs/{job_id}/retry")
    output = _format(output, as_json)
    if output is Format.TEXT:
        out.print(f"Retrying {job_id}.", highlight=False)
    elif output is Format.JSONL or not watch_job:
        _emit(accepted, output)
    if watch_job:
        watch(job_id, url, token, output)


@app.command()
def result(
    job_id: JobIdArg,
    name: Annotated[str, typer.Argument(help="The action's name, e.g. demo.blob#1.")],
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write it to this file (default: standard output)."),
    ] = None,
) -> None:
    """Download an action's whole result, whatever its size (JSON, or the bytes it stored)."""
    path = f"/api/jobs/{quote(job_id, safe='')}/actions/{quote(name, safe='')}/result"
    try:
        with _client(url, token) as http, http.stream("GET", path) as response:
            if response.is_error:
                response.read()
                _fail(f"{response.status_code}: {_detail(response)}")
            if output is None:
                for chunk in response.iter_bytes():
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                return
            partial = output.with_name(f".{output.name}.partial")  # never half a file
            try:
                with partial.open("wb") as file:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
                partial.replace(output)
            finally:
                partial.unlink(missing_ok=True)
    except httpx.HTTPError as exc:
        _fail(f"cannot download from {url}: {exc}")
    err.print(f"Wrote {output.stat().st_size:,} bytes to {output}.", highlight=False)


@app.command()
def actions(
    url: Url = "http://127.0.0.1:8000",
    token: Token = "",
    output: FormatOpt = Format.TEXT,
    as_json: JsonFlag = False,
) -> None:
    """The action types a job may use, with their parameters."""
    kinds = _call(url, token, "GET", "/api/actions")
    if (output := _format(output, as_json)) is not Format.TEXT:
        _emit(kinds, output)
        return
    table = Table("type", "params", "description")
    for kind in kinds:
        params = ", ".join(kind["params_schema"].get("properties", {}))
        table.add_row(kind["type"], params, kind["description"])
    out.print(table)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def worker(ctx: typer.Context) -> None:
    """Run a worker, as `python worker.py [OPTIONS]` does (fanout worker --help lists them)."""
    import runpy

    sys.argv = [sys.argv[0], *ctx.args]  # run_module puts worker.py in argv[0]
    runpy.run_module("worker", run_name="__main__", alter_sys=True)  # its own exit code


@app.command()
def web(
    host: Annotated[str | None, typer.Option(help="Default: FANOUT_HOST (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default: FANOUT_PORT (8000).")] = None,
) -> None:
    """Run the web app (API and dashboard) under uvicorn, as `make web` does."""
    import uvicorn

    from fanout.settings import settings

    uvicorn.run("web.app:app", host=host or settings.host, port=port or settings.port)


class _JobProgress:
    """Progress bars per action on a terminal; one line per change otherwise (logs, CI)."""

    def __init__(self, console: Console, output: Format = Format.TEXT) -> None:
        self.console = console
        self.output = output
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[state]}"),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.last_line = ""
        terminal = console.is_terminal and output is Format.TEXT
        self.live = Live(self.bars, console=console) if terminal else None

    def __enter__(self) -> _JobProgress:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(None, None, None)

    def update(self, job: dict[str, Any]) -> None:
        if self.output is Format.JSONL:
            _emit(job, self.output)
            return
        if self.output is Format.JSON:  # only the final state, once the job ends
            return
        if not self.live:
            running = [
                f"{a['name']} {a['progress']:.0f}%" if a.get("progress") else a["name"]
                for a in job["actions"]
                if a["status"] == "RUNNING"
            ]
            line = f"{job['status']} {_counts(job)}" + (
                f" [{', '.join(running)}]" if running else ""
            )
            if line != self.last_line:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
                self.last_line = line
            return
        for action in job["actions"]:
            name, state = action["name"], _action_state(action)
            done = 100.0 if action["status"] in EXIT else action.get("progress") or 0.0
            if name not in self.tasks:
                self.tasks[name] = self.bars.add_task(name, total=100, state=state)
            self.bars.update(self.tasks[name], completed=done, state=state)


def _action_state(action: dict[str, Any]) -> str:
    state = _styled(action["status"])
    if action.get("attempt", 0) and action["attempt"] > 1 and action["status"] == "RUNNING":
        state += f" attempt {action['attempt']}"
    if action.get("error"):
        state += f" - {action['error']}"
    elif action.get("last_failure"):
        state += f" (last: {action['last_failure']})"
    return state


def _counts(job: dict[str, Any]) -> str:
    p = job["progress"]
    parts = [f"{p['completed'] + p['failed'] + p['cancelled']}/{p['total']} done"]
    parts += [f"{p[k]} {k}" for k in ("failed", "cancelled", "running", "pending") if p[k]]
    return ", ".join(parts)


def _local_time(value: str | None) -> str:
    """'2026-11-29T03:59:33.18Z' -> '2026-11-29 04:59:33 UTC+01:00' in this machine's zone (TZ)."""
    if not value:
        return ""
    local = datetime.fromisoformat(value).astimezone()
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _job_table(job: dict[str, Any]) -> Table:
    heading = f"{job['job_id']}  {job['status']}  {_counts(job)}"
    if job.get("title"):
        heading = f"{job['title']}\n{heading}"
    table = Table(
        "action",
        "type",
        "status",
        "attempts",
        "result / error",
        title=Text(heading),  # the job's own words, printed as they are: never markup
    )
    for action in job["actions"]:
        detail = action.get("error") or json.dumps(action.get("result"))[:80]
        table.add_row(
            action["name"], action["type"], _action_state(action), str(action["attempts"]), detail
        )
    return table


def main() -> None:
    """Run the CLI; a usage error is one line on stderr and exit code 2, never a traceback."""
    args = sys.argv[1:] or ["--help"]
    try:
        code = app(args, standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError and BadParameter, vendored by Typer
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err.print(f"error: {message}{hint}", markup=False, highlight=False, soft_wrap=True)
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except typer.Abort:
        err.print("Aborted.", highlight=False)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
