"""The dashboard's words in English and Brazilian Portuguese, and locale-aware dates and numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent

from workflows.contract import Status

LANGUAGES = {"en": "English", "pt-BR": "Português (BR)"}
DEFAULT_LANGUAGE = "en"
_BABEL = {"en": "en_US", "pt-BR": "pt_BR"}

STATUS_LABELS = {
    "en": {s: s.value for s in Status},
    "pt-BR": {
        Status.PENDING: "PENDENTE",
        Status.RUNNING: "PROCESSANDO",
        Status.COMPLETED: "CONCLUÍDO",
        Status.FAILED: "ERRO",
        Status.CANCELLED: "CANCELADO",
    },
}

_TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Português)
    "app_tagline": (
        "Many background actions, one live view",
        "Muitas ações em segundo plano, uma visão ao vivo",
    ),
    "sign_in": ("Sign in", "Entrar"),
    "sign_out": ("Sign out", "Sair"),
    "api_key": ("API key", "Chave de API"),
    "sign_in_hint": (
        "Paste your API key. `make run` prints one.",
        "Cole sua chave de API. O `make run` mostra uma.",
    ),
    "bad_key": ("This API key is not valid.", "Esta chave de API não é válida."),
    "too_many_keys": (
        "Too many wrong keys came from your address; try again in a minute.",
        "Chaves erradas demais vieram do seu endereço; tente de novo em um minuto.",
    ),
    "confirm_sign_in": (
        "This link signs this browser in as {name}.",
        "Este link conecta este navegador como {name}.",
    ),
    "continue_as": ("Continue as {name}", "Continuar como {name}"),
    "sign_in_expired": (
        "That sign-in was not completed in time; sign in again.",
        "Essa entrada não foi concluída a tempo; entre de novo.",
    ),
    "signed_in_as": ("Signed in as {name}", "Conectado como {name}"),
    "language": ("Language", "Idioma"),
    "job_ended": ("Your job {job} has ended: {status}", "Seu job {job} terminou: {status}"),
    "webhooks": ("Webhooks", "Webhooks"),
    "webhook_status": ("Delivery", "Entrega"),
    "webhook_attempts": ("Attempts", "Tentativas"),
    "webhook_last": ("Last answer", "Última resposta"),
    "webhook_next": ("next attempt {when}", "próxima tentativa {when}"),
    "webhook_unknown": ("unknown", "desconhecida"),
    "webhook_dropped": (
        "{count} more events were not sent (a job sends at most 100).",
        "Outros {count} eventos não foram enviados (um job envia no máximo 100).",
    ),
    "jobs": ("Jobs", "Jobs"),
    "new_job": ("New job", "Novo job"),
    "all_statuses": ("All statuses", "Todos os status"),
    "status": ("Status", "Status"),
    "no_jobs": (
        "No jobs yet. Start one with “New job”.",
        "Nenhum job ainda. Crie um em “Novo job”.",
    ),
    "k_of_n": ("{k} of {n}", "{k} de {n}"),
    "actions_count": ("{n} actions", "{n} ações"),
    "one_action": ("1 action", "1 ação"),
    "created": ("Created", "Criado"),
    "finished": ("Finished", "Terminado"),
    "previous_page": ("Previous", "Anterior"),
    "next_page": ("Next", "Próxima"),
    "open_job": ("Open job {id}", "Abrir job {id}"),
    "presets": ("Presets", "Modelos"),
    "preset_demo": (
        "Demo: 5 actions, one retried, one failing",
        "Demo: 5 ações, uma repetida, uma com erro",
    ),
    "preset_text": ("Text statistics", "Estatísticas de texto"),
    "action": ("Action {n}", "Ação {n}"),
    "type": ("Type", "Tipo"),
    "name_optional": ("Name (optional)", "Nome (opcional)"),
    "add_action": ("Add action", "Adicionar ação"),
    "remove_action": ("Remove action {n}", "Remover ação {n}"),
    "options": ("Job options", "Opções do job"),
    "failure_policy": ("When an action fails", "Quando uma ação falha"),
    "policy_continue": ("Keep running the others", "Continuar as outras"),
    "policy_fail_fast": ("Cancel the rest (fail fast)", "Cancelar o resto (fail fast)"),
    "tolerated_failures": ("Tolerated failures", "Falhas toleradas"),
    "max_parallel": ("At most at once (empty: all)", "No máximo ao mesmo tempo (vazio: todas)"),
    "labels": ("Labels (key=value, one per line)", "Rótulos (chave=valor, um por linha)"),
    "submit": ("Start job", "Iniciar job"),
    "fix_errors": ("Please fix the marked fields.", "Corrija os campos marcados."),
    "progress": ("Progress", "Progresso"),
    "cancel_job": ("Cancel job", "Cancelar job"),
    "retry_job": ("Retry failed actions", "Repetir ações com erro"),
    "confirm_cancel": (
        "Cancel this job? Finished actions keep their results.",
        "Cancelar este job? Ações terminadas mantêm seus resultados.",
    ),
    "confirm_retry": (
        "Run the actions that did not complete again?",
        "Executar de novo as ações que não concluíram?",
    ),
    "yes": ("Yes", "Sim"),
    "no": ("No", "Não"),
    "open_temporal": ("Open in Temporal UI", "Abrir no Temporal UI"),
    "live": ("Live", "Ao vivo"),
    "reconnecting": ("Reconnecting…", "Reconectando…"),
    "final": (
        "Finished — this page no longer updates",
        "Terminado — esta página não atualiza mais",
    ),
    "timeline": ("Timeline", "Linha do tempo"),
    "actions": ("Actions", "Ações"),
    "attempt": ("attempt {n}", "tentativa {n}"),
    "attempts": ("{n} attempts", "{n} tentativas"),
    "last_error": ("Last error: {error}", "Último erro: {error}"),
    "next_retry": ("next try {when}", "próxima tentativa {when}"),
    "result": ("Result", "Resultado"),
    "download_result": (
        "Download the result ({size}, {type})",
        "Baixar o resultado ({size}, {type})",
    ),
    "bytes": ("{n} bytes", "{n} bytes"),
    "error": ("Error", "Erro"),
    "duration": ("Duration", "Duração"),
    "not_found": ("Job {id} not found.", "Job {id} não encontrado."),
    "list_refused": (
        "Temporal refused to list these jobs: {reason}",
        "O Temporal recusou listar estes jobs: {reason}",
    ),
    "page_gone": (
        "That page of jobs is gone; the first page follows.",
        "Essa página de jobs não existe mais; a primeira página vem a seguir.",
    ),
    "unavailable": (
        "Temporal is unreachable; retrying…",
        "Temporal inacessível; tentando de novo…",
    ),
    "cancel_requested": ("Cancel requested.", "Cancelamento solicitado."),
    "retry_started": ("Retry started.", "Nova tentativa iniciada."),
    "showing": ("Showing {a}–{b} of {n}", "Mostrando {a}–{b} de {n}"),
    "job_error": ("Job: {error}", "Job: {error}"),
    # Titles, search and label filters, starting a job again like another
    "title_optional": ("Title (optional)", "Título (opcional)"),
    "search_jobs": ("Search jobs", "Buscar jobs"),
    "search_hint": (
        "Words of the title, the start of a job id, or key=value",
        "Palavras do título, o início do id do job, ou chave=valor",
    ),
    "filtered_by": ("Filtered by:", "Filtrado por:"),
    "search_for": ("“{text}”", "“{text}”"),
    "clear_filters": ("Clear filters", "Limpar filtros"),
    "bad_filter": (
        "This link's filter cannot be used: {problem}",
        "O filtro deste link não pode ser usado: {problem}",
    ),
    "labels_of_job": ("Labels", "Rótulos"),
    "start_again": ("Start again like this one", "Iniciar outro igual a este"),
    "started_from": (
        "Filled in from job {id}; change anything before starting.",
        "Preenchido a partir do job {id}; altere o que quiser antes de iniciar.",
    ),
    "own_webhooks": (
        "{n} webhook(s) of that job go along (your default webhooks are added as always).",
        "{n} webhook(s) daquele job vão junto (seus webhooks padrão são adicionados como sempre).",
    ),
    # The statistics page (/stats).
    "statistics": ("Statistics", "Estatísticas"),
    "stats_title": ("Statistics per action type", "Estatísticas por tipo de ação"),
    "stats_window": ("Period", "Período"),
    "window_1h": ("Last hour", "Última hora"),
    "window_24h": ("Last 24 hours", "Últimas 24 horas"),
    "window_7d": ("Last 7 days", "Últimos 7 dias"),
    "stats_scope_own": (
        "Your jobs that ended since {since}: {jobs}.",
        "Seus jobs que terminaram desde {since}: {jobs}.",
    ),
    "stats_scope_all": (
        "Everyone's jobs that ended since {since}: {jobs}.",
        "Jobs de todos que terminaram desde {since}: {jobs}.",
    ),
    "stats_truncated": (
        "Only the newest {n} jobs are counted.",
        "Só os {n} jobs mais recentes são contados.",
    ),
    "stats_none": (
        "No job ended in this period.",
        "Nenhum job terminou neste período.",
    ),
    "stats_no_waits": (
        "Waits for a worker are unknown: these jobs did not record when their actions were "
        "scheduled.",
        "As esperas por um worker são desconhecidas: estes jobs não registraram quando suas "
        "ações foram agendadas.",
    ),
    "stats_rates": ("Success and retry rates", "Taxas de sucesso e de novas tentativas"),
    "stats_times": ("Run time and wait for a worker", "Duração e espera por um worker"),
    "stats_table": ("Per action type", "Por tipo de ação"),
    "col_type": ("Action type", "Tipo de ação"),
    "col_count": ("Actions", "Ações"),
    "col_success": ("Success rate", "Taxa de sucesso"),
    "col_retry": ("Retry rate", "Taxa de novas tentativas"),
    "col_p50": ("Run time p50", "Duração p50"),
    "col_p95": ("Run time p95", "Duração p95"),
    "col_wait_p50": ("Wait p50", "Espera p50"),
    "col_wait_p95": ("Wait p95", "Espera p95"),
    "unknown": ("unknown", "desconhecida"),
    "seconds_axis": ("seconds", "segundos"),
    # Accessibility and colour scheme
    "scheme": ("Theme", "Tema"),
    "scheme_auto": ("Auto (system)", "Automático (sistema)"),
    "scheme_light": ("Light", "Claro"),
    "scheme_dark": ("Dark", "Escuro"),
    "progress_of": ("Progress of {name}", "Progresso de {name}"),
    "job_heading": ("Job {id}", "Job {id}"),
    "keep_running": ("No, keep it running", "Não, manter rodando"),
    "yes_cancel": ("Yes, cancel it", "Sim, cancelar"),
    # Waiting for workers, time left, timeline
    "time_left": ("about {duration} left", "cerca de {duration} restantes"),
    "queue_backlog": (
        "{n} actions waiting for a worker, oldest {age} (task queue {queue})",
        "{n} ações aguardando um worker, a mais antiga há {age} (fila {queue})",
    ),
    "waiting_for_worker": (
        "waiting for a worker · {duration}",
        "aguardando um worker · {duration}",
    ),
    "tl_waiting": ("Waiting for a worker", "Aguardando um worker"),
    "tl_earlier": ("Earlier attempts and waits", "Tentativas anteriores e esperas"),
    "tl_final": ("Last attempt", "Última tentativa"),
    "tl_work": ("Work (start not reported)", "Trabalho (início não informado)"),
    "tl_start": ("Start: {when}", "Início: {when}"),
    "tl_end": ("End: {when}", "Fim: {when}"),
    "tl_running": ("still running", "ainda em andamento"),
    "tl_seconds": ("s since the job was created", "s desde a criação do job"),
}


class Translator:
    """Words, statuses, dates and numbers for one language and time zone."""

    def __init__(self, language: str = DEFAULT_LANGUAGE, timezone: str | None = None) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._locale = _BABEL[self.language]
        self._index = list(LANGUAGES).index(self.language)
        try:
            self.tz = ZoneInfo(timezone) if timezone else UTC
        except (ZoneInfoNotFoundError, ValueError):
            self.tz = UTC

    def __call__(self, key: str, **values: object) -> str:
        return _TEXT[key][self._index].format(**values)

    def status(self, status: Status | str) -> str:
        return STATUS_LABELS[self.language][Status(status)]

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value, "medium", tzinfo=self.tz, locale=self._locale)

    def ago(self, value: datetime, now: datetime | None = None) -> str:
        delta = value - (now or datetime.now(UTC))
        return format_timedelta(delta, add_direction=True, locale=self._locale)

    def duration(self, value: timedelta) -> str:
        seconds = value.total_seconds()
        if seconds < 60:
            return f"{format_decimal(round(seconds, 1), locale=self._locale)} s"
        return format_timedelta(value, threshold=2, locale=self._locale)

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self._locale)

    def percent(self, value: float) -> str:
        return format_percent(value / 100, locale=self._locale)
