// The example page: start the demo job through this site's backend, then watch it live from
// Fanout. The page never holds the API key, only the job's watch token.
// Everything shown is built with createElement and textContent: job data is never parsed as HTML.

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

const button = /** @type {HTMLButtonElement} */ (document.getElementById("start"));
const message = /** @type {HTMLElement} */ (document.getElementById("message"));
const section = /** @type {HTMLElement} */ (document.getElementById("job"));
const list = /** @type {HTMLUListElement} */ (document.getElementById("actions"));

/** @type {Map<string, {row: HTMLLIElement, bar: HTMLProgressElement, status: HTMLElement,
 *   attempt: HTMLElement, detail: HTMLElement, seen: number}>} */
const rows = new Map();

function say(text) {
  message.textContent = text;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function rowFor(name) {
  let row = rows.get(name);
  if (!row) {
    const li = element("li", { class: "action", "data-action": name, "aria-label": name });
    const bar = element("progress", { max: "100", value: "0", "aria-label": `${name} progress` });
    row = {
      row: li,
      bar,
      status: element("span", { class: "status", "data-testid": "action-status" }),
      attempt: element("span", { class: "attempt", "data-testid": "action-attempt" }),
      detail: element("span", { class: "detail", "data-testid": "action-error" }),
      seen: 0,
    };
    li.append(element("span", { class: "name" }, name), bar, row.status, row.attempt, row.detail);
    rows.set(name, row);
  }
  return row;
}

/** Show one state of the job (every message is the whole job). */
function render(job) {
  section.hidden = false;
  document.getElementById("job-id").textContent = job.job_id;
  const status = document.getElementById("job-status");
  status.textContent = job.status;
  status.dataset.status = job.status;
  const p = job.progress;
  document.getElementById("job-progress").value = p.percent;
  document.getElementById("job-percent").textContent = `${p.percent}%`;
  document.getElementById("job-counts").textContent =
    `${p.completed} completed · ${p.failed} failed · ${p.running} running · ` +
    `${p.pending} pending, of ${p.total}`;
  const jobError = document.getElementById("job-error");
  jobError.hidden = !job.error;
  jobError.textContent = job.error || "";

  for (const action of job.actions) {
    const row = rowFor(action.name);
    const finished = FINAL.has(action.status);
    row.row.dataset.status = action.status;
    list.append(row.row); // in the job's order (moves rows already shown)
    if (finished) row.bar.value = 100;
    else if (action.status === "RUNNING" && action.progress != null) row.bar.value = action.progress;
    else if (action.status === "RUNNING") row.bar.removeAttribute("value"); // busy, no percent yet
    else row.bar.value = 0;
    row.status.textContent = action.status;
    const attempt = finished ? action.attempts : (action.attempt ?? action.attempts);
    row.seen = Math.max(row.seen, attempt || 0);
    row.row.dataset.attempts = String(action.attempts);
    row.row.dataset.maxAttempt = String(row.seen);
    row.attempt.textContent = attempt ? `attempt ${attempt}` : "";
    row.detail.textContent = detail(action);
  }
}

function detail(action) {
  if (action.error) return action.error;
  const parts = [];
  if (action.last_failure && !FINAL.has(action.status)) {
    parts.push(`last failure: ${action.last_failure}`);
  }
  if (action.next_retry_at && !FINAL.has(action.status)) {
    parts.push(`next attempt at ${new Date(action.next_retry_at).toLocaleTimeString()}`);
  }
  if (action.progress_message && action.status === "RUNNING") parts.push(action.progress_message);
  return parts.join(" · ");
}

async function main() {
  const config = await (await fetch("/config.json")).json();
  const fanoutUrl = config.fanout_url.replace(/\/+$/, "");
  const { startJob, watchJob } = await import(`${fanoutUrl}/static/fanout.js`);

  button.addEventListener("click", async () => {
    button.disabled = true;
    rows.clear();
    list.replaceChildren();
    say("Starting the job…");
    try {
      const accepted = await startJob("/start", {});
      say(`Watching job ${accepted.job_id} live.`);
      const watch = watchJob(accepted.job_id, accepted.watch_token, render, {
        onError: (err) => say(`${err.message}`),
      });
      const final = await watch.done;
      say(`The job ended ${final.status}.`);
    } catch (err) {
      say(`Could not follow the job: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  button.disabled = false;
  say(`Ready: Fanout is at ${fanoutUrl}.`);
}

main().catch((err) => say(`Could not load Fanout's client: ${err.message}`));
