// Fanout's browser client: start a job through your own backend, then watch it live.
//
// No dependencies, no DOM: an ES module a page imports from the Fanout server that serves it
// (`<fanout>/static/fanout.js`). The API key stays on the page's backend: the page only ever
// holds a watch token, which lets it follow one job (and nothing else: it cannot start, cancel
// or list jobs).
//
//   import { startJob, watchJob } from "https://fanout.example.com/static/fanout.js";
//   const accepted = await startJob("/start", { actions: [...] });
//   const { done } = watchJob(accepted.job_id, accepted.watch_token, (job) => render(job));
//   const final = await done;  // COMPLETED, FAILED or CANCELLED

/**
 * @typedef {"PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED"} Status
 */

/**
 * Counts of a job's actions by state; `percent` is the finished ones (any outcome).
 * @typedef {Object} Progress
 * @property {number} total
 * @property {number} pending
 * @property {number} running
 * @property {number} completed
 * @property {number} failed
 * @property {number} cancelled
 * @property {number} percent Whole percentage of the actions that finished.
 */

/**
 * One action of a job, with its live details.
 * @typedef {Object} ActionView
 * @property {string} name Unique within the job.
 * @property {string} type Its action type, e.g. "demo.sleep".
 * @property {Status} status
 * @property {number} attempts Attempts made, the one under way included (0 if it never ran).
 * @property {string | null} scheduled_at ISO 8601: when the job scheduled it.
 * @property {string | null} started_at ISO 8601: when a worker started its work (last attempt).
 * @property {string | null} finished_at ISO 8601.
 * @property {*} result What the action returned (big jobs leave it out).
 * @property {string | null} error Why it failed, once it has.
 * @property {number | null} batch Big jobs: which batch ran it.
 * @property {number | null} attempt The attempt running now (or next, when retrying).
 * @property {number | null} progress Percent the action reported while running.
 * @property {string | null} progress_message
 * @property {string | null} last_failure Why the previous attempt failed.
 * @property {string | null} next_retry_at ISO 8601: when the next attempt starts.
 */

/**
 * A job as `GET /api/jobs/{id}` shows it, and as each live message carries it.
 * @typedef {Object} JobView
 * @property {string} job_id
 * @property {Status} status
 * @property {string} owner
 * @property {Object<string, string>} labels
 * @property {string} created_at ISO 8601.
 * @property {string} updated_at ISO 8601.
 * @property {string | null} finished_at ISO 8601.
 * @property {Progress} progress Always complete, even in a message of changes.
 * @property {ActionView[]} actions All actions, or one page of a big job's.
 * @property {number} version Grows by one on every change of the job.
 * @property {string | null} error Why the job as a whole stopped, if no action explains it.
 * @property {number | null} actions_total Big jobs: how many actions the page is from.
 * @property {number} actions_offset
 * @property {string} run_id
 * @property {boolean} actions_are_changes In what `watchJob` hands over: always false.
 * @property {boolean} stale
 * @property {string | null} read_at
 */

/**
 * What starting a job answers (Fanout's `202 Accepted`, passed on by your backend).
 * @typedef {Object} JobAccepted
 * @property {string} job_id
 * @property {string} status_url
 * @property {string} events_url
 * @property {string} ws_url
 * @property {string} watch_token Lets a browser watch this job, and only watch it.
 * @property {string} watch_token_expires_at ISO 8601.
 */

/**
 * A watch token, or a function giving one. The function is called whenever the client itself
 * opens a connection: the first, a fallback to the WebSocket, each reconnection after a lost
 * stream, and one more try when a stream is refused with 401/4401. So a page can ask its backend
 * for a fresh token when the first has expired. It is not called for the browser's own
 * EventSource reconnects, which reuse the URL (and token) of the stream they resume.
 * @typedef {string | (() => string | Promise<string>)} TokenSource
 */

/**
 * @typedef {Object} WatchOptions
 * @property {string | URL} [baseUrl] Fanout's address; default: where this module came from.
 * @property {"auto" | "sse" | "websocket"} [transport] "auto" (the default) uses Server-Sent
 *   Events and falls back to a WebSocket when they are missing or refused.
 * @property {(err: Error) => void} [onError] Told of problems the watch gets over (a dropped
 *   connection, a fallback, a retry); the watch goes on.
 * @property {number} [retryDelayMs] The first delay before reconnecting, in milliseconds
 *   (default 1000); it doubles with each reconnection in a row that brings no new message, up to
 *   15 s.
 */

/**
 * What `watchJob` returns.
 * @typedef {Object} Watch
 * @property {Promise<JobView>} done The final state; rejects if the watch cannot go on.
 * @property {() => void} close Stops watching; `done` then rejects with an "AbortError".
 */

/** @type {ReadonlySet<string>} */
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const RECONNECTS = 5; // reconnections in a row that bring no new message before giving up
const RETRY_DELAY_MS = 1000; // before the first of them; doubled before each next one...
const MAX_RETRY_DELAY_MS = 15000; // ...up to this
// WebSocket closes worth reconnecting after: going away, cut (a network drop), service restart
// (a server shutting down), try again later (Temporal unreachable for now).
/** @type {ReadonlySet<number>} */
const RETRY_CODES = new Set([1001, 1006, 1012, 1013]);

/**
 * Start a job through the page's own backend, which holds the API key and forwards the request
 * to Fanout's `POST /api/jobs`.
 *
 * @param {string | URL} backendUrl Your backend's endpoint, e.g. "/start".
 * @param {*} request The JSON body to send (a job request, or whatever your backend expects).
 * @param {RequestInit} [init] More fetch options (headers, signal, credentials...).
 * @returns {Promise<JobAccepted>}
 * @throws {Error & {status: number}} On an answer that is not 2xx: the message is its `detail`.
 */
export async function startJob(backendUrl, request, init = {}) {
  const headers = new Headers(init.headers);
  if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  if (!headers.has("Accept")) headers.set("Accept", "application/json, application/problem+json");
  const response = await fetch(backendUrl, {
    method: "POST",
    ...init,
    headers,
    body: JSON.stringify(request ?? {}),
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : null;
    const error = new Error(
      detail || `${response.status} ${response.statusText || "error"} from ${response.url}`
    );
    Object.assign(error, { status: response.status, body });
    throw error;
  }
  if (body === null || typeof body !== "object") {
    throw Object.assign(new Error(`The answer from ${response.url} is not JSON.`), {
      status: response.status,
    });
  }
  return /** @type {JobAccepted} */ (body);
}

/**
 * Follow a job live until it ends: `onUpdate` gets the whole job on every change.
 *
 * A lost connection is reopened (resuming after the last version seen), waiting longer each
 * time: 1 s, 2 s, 4 s, 8 s, then 15 s. After RECONNECTS (5) reconnections in a row that bring no
 * new message, `done` rejects with why the last one ended. WebSocket closes 1001, 1006, 1012 and
 * 1013 are retried, as are event streams that the browser could not resume and refused streams
 * the server answers with a 5xx. A refused token (401/4401) is retried once with a fresh one when
 * `token` is a function; other refusals (4403, 4404, 4429, 1008, 1011...) reject `done` with the
 * server's reason.
 *
 * @param {string} jobId
 * @param {TokenSource} token A watch token (from `startJob`'s answer, or from your backend).
 * @param {(job: JobView) => void} onUpdate Called with each state, the final one included. If it
 *   throws, the watch ends: `done` rejects with what it threw.
 * @param {WatchOptions} [options]
 * @returns {Watch}
 */
export function watchJob(jobId, token, onUpdate, options = {}) {
  const base = new URL(options.baseUrl ?? new URL("..", import.meta.url));
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const transport = options.transport ?? "auto";
  const notify = options.onError ?? (() => {});
  const firstDelay = options.retryDelayMs ?? RETRY_DELAY_MS;
  const refreshable = typeof token === "function";
  const path = `api/jobs/${encodeURIComponent(jobId)}`;

  /** @type {(job: JobView) => void} */
  let resolve;
  /** @type {(err: Error) => void} */
  let reject;
  /** @type {Promise<JobView>} */
  const done = new Promise((yes, no) => {
    resolve = yes;
    reject = no;
  });

  let settled = false;
  /** @type {JobView | null} */
  let state = null;
  /** @type {number | null} */
  let version = null;
  /** @type {EventSource | null} */
  let source = null;
  /** @type {WebSocket | null} */
  let socket = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let attempts = 0; // reconnections since the last message, whichever connection made them
  let refreshed = false; // a refused token retried with a fresh one since the last message

  function stop() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (source) source.close();
    source = null;
    if (socket) {
      const open = socket;
      socket = null;
      open.onmessage = open.onclose = open.onerror = null;
      if (open.readyState <= 1) open.close(1000);
    }
  }

  /** @param {JobView} job */
  function finish(job) {
    if (settled) return;
    settled = true;
    stop();
    resolve(job);
  }

  /** @param {Error} err */
  function fail(err) {
    if (settled) return;
    settled = true;
    stop();
    reject(err);
  }

  /**
   * @param {string} message
   * @param {Object} [fields] e.g. `code` or `status`
   * @returns {Error & Object}
   */
  function problem(message, fields = {}) {
    return Object.assign(new Error(message), fields);
  }

  /** @param {Error} err */
  function tell(err) {
    try {
      notify(err);
    } catch (thrown) {
      console.error(thrown);
    }
  }

  /**
   * Open a new connection after one was lost, later each time; give up after RECONNECTS of them
   * in a row without a message.
   * @param {() => void} open
   * @param {Error & Object} why How the last connection ended (with its `code` or `status`).
   */
  function reconnect(open, why) {
    if (settled) return;
    if (++attempts > RECONNECTS) {
      const tries = `${RECONNECTS} reconnections`;
      fail(problem(`Gave up after ${tries} without a new message: ${why.message}`, why));
      return;
    }
    const delay = Math.min(firstDelay * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
    tell(problem(`${why.message} Reconnecting in ${delay} ms.`, why));
    timer = setTimeout(() => {
      timer = null;
      open();
    }, delay);
  }

  /**
   * A stream refused for its token: try once more with a fresh one, if `token` can give one.
   * @param {() => void} open
   * @param {Error & Object} why
   * @returns {boolean} Whether it does.
   */
  function refresh(open, why) {
    if (!refreshable || refreshed) return false;
    refreshed = true;
    tell(problem(`${why.message} Retrying with a fresh token.`, why));
    open();
    return true;
  }

  async function currentToken() {
    const value = typeof token === "function" ? await token() : token;
    if (typeof value !== "string" || !value) throw problem("No watch token to watch the job with.");
    return value;
  }

  /**
   * @param {"events" | "ws"} kind
   * @param {string} value The watch token.
   */
  function streamUrl(kind, value) {
    const url = new URL(`${path}/${kind}`, base);
    if (kind === "ws") url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", value);
    if (version !== null) url.searchParams.set("last_event_id", String(version));
    return url;
  }

  /**
   * One message: the whole job, or (big jobs) the actions that changed since the last one.
   * @param {string} text
   * @returns {boolean} Whether it was the final state.
   */
  function receive(text) {
    /** @type {JobView} */
    const message = JSON.parse(text);
    attempts = 0;
    refreshed = false;
    if (typeof message.version === "number") version = message.version;
    state = message.actions_are_changes && state ? merged(state, message) : message;
    state = { ...state, actions_are_changes: false };
    onUpdate(state);
    if (FINAL.has(state.status)) {
      finish(state);
      return true;
    }
    return false;
  }

  /** @param {string} text */
  function handle(text) {
    try {
      receive(text);
    } catch (err) {
      fail(err instanceof Error ? err : problem(String(err)));
    }
  }

  /**
   * The token for a new connection, or null if the watch ended meanwhile or has no token
   * (then it has failed with the reason).
   * @returns {Promise<string | null>}
   */
  async function tokenOrFail() {
    try {
      const value = await currentToken();
      return settled ? null : value;
    } catch (err) {
      fail(/** @type {Error} */ (err));
      return null;
    }
  }

  // --- Server-Sent Events -------------------------------------------------------------------

  async function openEvents() {
    const value = await tokenOrFail();
    if (value === null) return;
    const url = streamUrl("events", value);
    const events = new EventSource(url.href);
    source = events;
    let delivered = false;
    events.onmessage = (event) => {
      if (settled || source !== events) return;
      delivered = true;
      handle(event.data);
    };
    events.onerror = () => {
      if (settled || source !== events) return;
      if (events.readyState !== EventSource.CLOSED) {
        tell(problem("The event stream dropped; reconnecting."));
        return; // the browser reconnects by itself, resuming after the last version (same URL)
      }
      events.close();
      source = null;
      if (delivered) {
        // The browser's own reconnect was refused (an expired token, a proxy's 5xx...): a new
        // stream, with a fresh token if `token` gives one.
        reconnect(openEvents, problem("The event stream closed."));
      } else if (transport === "auto" && typeof WebSocket !== "undefined") {
        tell(problem("The event stream was refused or broken; trying a WebSocket."));
        openSocket();
      } else {
        refusedEvents(url);
      }
    };
  }

  /**
   * Why a stream was refused, from the server's answer to the same request; retried if that is
   * a 5xx (a proxy during a deploy), or a 401 and a fresh token may help.
   * @param {URL} url
   */
  async function refusedEvents(url) {
    const abort = new AbortController();
    let error = problem(`The event stream of job ${jobId} could not be opened.`);
    try {
      const response = await fetch(url.href, {
        signal: abort.signal,
        headers: { Accept: "application/json, application/problem+json" },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const detail = body && typeof body.detail === "string" ? body.detail : null;
        error = problem(detail || `${response.status} from ${url.origin}`, {
          status: response.status,
        });
      }
    } catch {
      // unreachable: the first message says enough
    } finally {
      abort.abort();
    }
    if (settled) return;
    const status = /** @type {{status?: number}} */ (error).status ?? 0;
    if (status >= 500) reconnect(openEvents, error);
    else if (!(status === 401 && refresh(openEvents, error))) fail(error);
  }

  // --- WebSocket ----------------------------------------------------------------------------

  async function openSocket() {
    const value = await tokenOrFail();
    if (value === null) return;
    const ws = new WebSocket(streamUrl("ws", value).href);
    socket = ws;
    ws.onmessage = (event) => {
      if (settled || socket !== ws) return;
      if (typeof event.data !== "string") return;
      handle(event.data);
    };
    ws.onclose = (event) => {
      if (settled || socket !== ws) return;
      socket = null;
      const reason = event.reason || closeReason(event.code);
      const error = problem(reason, { code: event.code });
      if (RETRY_CODES.has(event.code)) {
        reconnect(openSocket, error);
      } else if (event.code === 4401 && refresh(openSocket, error)) {
        // retrying with a fresh token
      } else if (event.code === 1000) {
        fail(problem("The job's stream ended before the job did (was it deleted?).", { code: 1000 }));
      } else {
        fail(error);
      }
    };
  }

  // --- start --------------------------------------------------------------------------------

  const hasEvents = typeof EventSource !== "undefined";
  const hasSocket = typeof WebSocket !== "undefined";
  if (transport !== "auto" && transport !== "sse" && transport !== "websocket") {
    fail(problem(`Unknown transport ${JSON.stringify(transport)}: use auto, sse or websocket.`));
  } else if (transport === "websocket" || (transport === "auto" && !hasEvents)) {
    if (hasSocket) openSocket();
    else fail(problem("This environment has no WebSocket."));
  } else if (hasEvents) {
    openEvents();
  } else {
    fail(problem("This environment has no EventSource."));
  }

  return {
    done,
    close() {
      if (settled) return;
      done.catch(() => {}); // closing on purpose is no unhandled rejection
      const error = problem("The watch was closed.");
      error.name = "AbortError";
      fail(error);
    },
  };
}

/**
 * The state after a message of changes: same-name actions replaced in place, new ones added.
 * @param {JobView} state
 * @param {JobView} changes
 * @returns {JobView}
 */
function merged(state, changes) {
  const actions = state.actions.slice();
  const index = new Map(actions.map((action, i) => [action.name, i]));
  for (const action of changes.actions) {
    const at = index.get(action.name);
    if (at === undefined) {
      index.set(action.name, actions.length);
      actions.push(action);
    } else {
      actions[at] = action;
    }
  }
  return { ...changes, actions };
}

/**
 * A sentence for a close without one (the browser's own codes, e.g. 1006: no connection).
 * @param {number} code
 */
function closeReason(code) {
  if (code === 1006) return "The WebSocket connection failed or was cut.";
  return `The WebSocket closed with code ${code}.`;
}
