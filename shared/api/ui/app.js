/* The gateway console: plain JS, no build step. Every figure comes from the gateway's JSON
   routes, called with the key kept in sessionStorage and sent as x-goog-api-key. Text from the
   API is always set as textContent, never as HTML. */
"use strict";

const KEY_STORE = "vbg-key";
const BASE = location.pathname.replace(/\/ui(\/.*)?$/, "");
const REFRESH_MS = 2000;
const IDLE_REFRESH_MS = 5000;
const TERMINAL = new Set(["SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]);
const state = { me: null, timer: null, chart: null, page: "", mounted: 0 };

/* --- plumbing --------------------------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = { "x-goog-api-key": key || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit",
  });
  let payload = {};
  try { payload = await response.json(); } catch (_) { /* empty body */ }
  if (!response.ok) {
    const message = (payload.error && payload.error.message) || `HTTP ${response.status}`;
    if (response.status === 401 && path !== "/v1/gateway/me") { signOut(message); }
    throw new ApiError(response.status, message);
  }
  return payload;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector, root = document) => root.querySelector(selector);
const shortState = (s) => (s || "UNKNOWN").replace(/^JOB_STATE_/, "");
const usd = (value) => (value === null || value === undefined ? "-" : "$" + trimUsd(value));
function trimUsd(value) {
  const [whole, frac = ""] = String(value).split(".");
  const kept = frac.replace(/0+$/, "");
  return whole + "." + (kept.length < 2 ? kept.padEnd(2, "0") : kept);
}
function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
function say(message) { $("#status").textContent = message || ""; }
function stateBadge(s) { const name = shortState(s); return el("span", { class: `state ${name}`, text: name }); }
function stopRefresh() { if (state.timer) { clearTimeout(state.timer); state.timer = null; } }
function refreshIn(fn, ms = REFRESH_MS) { stopRefresh(); state.timer = setTimeout(fn, ms); }

function mount(templateId) {
  stopRefresh();
  state.mounted += 1;
  if (state.chart) { state.chart.destroy(); state.chart = null; window.vbgChart = null; }
  const main = $("#main");
  main.replaceChildren($(templateId).content.cloneNode(true));
  return main;
}

/* --- sign in / out ---------------------------------------------------------------------- */

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.me = null;
  history.replaceState(null, "", "#/signin");
  render();
  if (message) say(message);
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#signin-key").value.trim();
  sessionStorage.setItem(KEY_STORE, key);
  try {
    state.me = await api("GET", "/v1/gateway/me");
    say("");
    if (location.hash === "#/jobs") render();
    else location.hash = "#/jobs";
  } catch (error) {
    sessionStorage.removeItem(KEY_STORE);
    $("#signin-error").textContent = error.message;
  }
}

function showChrome() {
  const signedIn = Boolean(state.me);
  $("#nav").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  $("#who").textContent = signedIn ? `${state.me.alias}${state.me.isMaster ? " (master key)" : ""}` : "";
  for (const link of document.querySelectorAll("#nav a")) {
    link.hidden = link.hasAttribute("data-master") && !(state.me && state.me.isMaster);
    if (link.dataset.page === state.page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/* --- jobs ------------------------------------------------------------------------------- */

async function jobsPage() {
  const main = mount("#t-jobs");
  const mounted = state.mounted;
  const form = $("#jobs-filter", main);
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  form.state.value = params.get("state") || "";
  form.label.value = params.get("label") || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (form.state.value) query.set("state", form.state.value);
    if (form.label.value.trim()) query.set("label", form.label.value.trim());
    location.hash = "#/jobs" + (query.toString() ? "?" + query : "");
  });
  const load = async () => {
    if (mounted !== state.mounted) return;
    const query = new URLSearchParams();
    if (params.get("state")) query.set("state", params.get("state"));
    if (params.get("label")) query.set("label", params.get("label"));
    let reply;
    try { reply = await api("GET", "/v1/gateway/jobs?" + query); }
    catch (error) {
      say(error.message);
      if (mounted === state.mounted && error.status !== 400) refreshIn(load, IDLE_REFRESH_MS);
      return;
    }
    if (mounted !== state.mounted) return;  // the user has moved on
    say("");
    const rows = reply.jobs.map((job) => el("tr", { "data-job": job.jobId },
      el("td", { "data-label": "Job" },
        el("a", { href: `#/jobs/${job.jobId}`, text: job.displayName || job.jobId })),
      el("td", { "data-label": "Model", text: job.model }),
      el("td", { "data-label": "State" }, stateBadge(job.state)),
      el("td", { "data-label": "Created", text: when(job.createTime) }),
      el("td", { "data-label": "Duration", text: duration(job.durationSeconds) }),
      el("td", { "data-label": "Rows ok / failed", class: "num",
        text: `${job.rows.succeeded} / ${job.rows.failed}` }),
      el("td", { "data-label": "Estimate", class: "num", text: usd(job.estimateUsd) }),
      el("td", { "data-label": "Cost", class: "num", "data-final": job.costFinal ? "true" : "false",
        text: usd(job.costUsd) + (job.costFinal ? "" : " so far") })));
    $("#jobs-table tbody", main).replaceChildren(...rows);
    $("#jobs-empty", main).hidden = rows.length > 0;
    const live = reply.jobs.some((job) => !job.terminal || !job.costFinal);
    $("#jobs-live", main).hidden = !live;
    // Fast while a job runs; slower otherwise, so that new jobs still show up.
    refreshIn(load, live ? REFRESH_MS : IDLE_REFRESH_MS);
  };
  await load();
}

function facts(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([name, value]) => [
    el("dt", { text: name }), el("dd", {}, value instanceof Node ? value : String(value ?? "-"))]));
}

async function jobPage(jobId) {
  const main = mount("#t-job");
  const mounted = state.mounted;
  const load = async () => {
    if (mounted !== state.mounted) return;
    let job, cost;
    try {
      [job, cost] = await Promise.all([
        api("GET", `/v1/gateway/jobs/${jobId}`), api("GET", `/v1/gateway/jobs/${jobId}/cost`)]);
    } catch (error) { say(error.message); return; }
    if (mounted !== state.mounted) return;  // the user has moved on
    say("");
    $("#job-title", main).textContent = job.displayName || job.jobId;
    $("#job-state", main).replaceWith(Object.assign(stateBadge(job.state), { id: "job-state" }));
    const labels = Object.entries(job.labels).map(([k, v]) => `${k}=${v}`).join(", ");
    facts($("#job-summary", main), [
      ["Job id", job.jobId], ["Model", job.model], ["Owner", job.ownerAlias],
      ["Team", job.team || "-"], ["Labels", labels || "-"], ["Created", when(job.createTime)],
      ["Duration", duration(job.durationSeconds)],
      ["Rows", `${job.rows.succeeded} succeeded, ${job.rows.failed} failed, ${job.rows.incomplete} incomplete`],
      ["Input", job.inputUris.join(", ")], ["Output", job.outputDirectory || job.outputPrefix],
      ["Error", job.error ? job.error.message : "-"],
    ]);
    const floor = cost.floor || {};
    facts($("#job-money", main), [
      ["Estimate", usd(job.estimateUsd)],
      ["Cost", el("strong", { id: "job-cost", "data-final": cost.costFinal ? "true" : "false",
        text: usd(cost.costUsd) + (cost.costFinal ? " (final)"
          : cost.estimatedRows ? " (not final: estimated rows included)" : " so far") })],
      ["Estimated rows", cost.estimatedRows
        ? el("span", { id: "job-estimated", class: "warn",
          text: `${cost.estimatedRows} rows, ${usd(cost.estimatedUsd)}: Vertex ran ` +
            `${floor.vertexSucceeded} ok rows, the files hold ${floor.bookedSucceeded} ` +
            `(booked at ${usd(floor.perRowUsd)} a row)` })
        : "-"],
      ["Tampered files", cost.tamperedFiles
        ? el("span", { class: "warn", text: String(cost.tamperedFiles) }) : "-"],
      ["Estimate error", cost.estimateErrorPct === null ? "-" : `${cost.estimateErrorPct}%`],
      ["Prompt / output tokens", `${cost.totals.promptTokens} / ${cost.totals.candidatesTokens + cost.totals.thoughtsTokens}`],
      ["Unpriced rows", cost.totals.unpricedRows],
    ]);
    $("#job-timeline", main).replaceChildren(...job.timeline.map((step) => el("li", {},
      el("time", { datetime: step.time, text: when(step.time) }), " ",
      step.from ? `${shortState(step.from)} \u2192 ` : "", stateBadge(step.to))));
    const alerts = Object.entries(job.alerts);
    $("#job-alerts", main).replaceChildren(...(alerts.length
      ? alerts.map(([kind, at]) => el("li", { text: `${kind}: ${when(at)}` }))
      : [el("li", { class: "muted", text: "none" })]));
    $("#job-files tbody", main).replaceChildren(...cost.files.map((file) => el("tr", {},
      el("td", { text: file.uri.split("/").slice(-2).join("/"), title: file.uri }),
      el("td", { class: "num", text: file.rows }), el("td", { class: "num", text: file.succeeded }),
      el("td", { class: "num", text: file.failed }), el("td", { class: "num", text: usd(file.costUsd) }),
      el("td", file.tamper ? { class: "warn", text: `tamper: ${file.tamper.reason}` }
        : { text: file.superseded ? "superseded" : "counts" }))));
    const failed = cost.failedSamples.slice(0, 5);
    $("#job-failed", main).replaceChildren(...(failed.length
      ? failed.map((sample) => el("pre", { text: JSON.stringify(sample, null, 1) }))
      : [el("p", { class: "muted", text: "No failed rows recorded." })]));
    const chain = cost.chain.jobs;
    $("#job-chain", main).replaceChildren(chain.length > 1
      ? el("div", {}, el("ol", {}, ...chain.map((link) => el("li", {},
          el("a", { href: `#/jobs/${link.jobId}`, text: link.jobId }), " ", stateBadge(link.state),
          ` ${usd(link.costUsd)}`, link.jobId === job.jobId ? " (this job)" : ""))),
        el("p", {}, "Chain total: ", el("strong", { id: "chain-total", text: usd(cost.chain.totalCostUsd) })))
      : el("p", { class: "muted", text: "Not part of a retry chain." }));
    const terminal = TERMINAL.has(shortState(job.state));
    $("#job-cancel", main).hidden = terminal || shortState(job.state) === "CANCELLING";
    $("#job-retry", main).hidden = !(terminal &&
      (shortState(job.state) !== "SUCCEEDED" || job.rows.failed > 0));
    if (!terminal || !cost.costFinal) refreshIn(load);
  };
  $("#job-cancel", main).addEventListener("click", async () => {
    if (!window.confirm(`Cancel job ${jobId}? Rows already done are still billed.`)) return;
    try {
      const job = await api("GET", `/v1/gateway/jobs/${jobId}`);
      await api("POST", `/v1/${job.name}:cancel`, {});
      say(`Cancel requested for job ${jobId}.`);
      await load();
    } catch (error) { say(error.message); }
  });
  $("#job-retry", main).addEventListener("click", async () => {
    if (!window.confirm(`Create a new job from the failed and unprocessed rows of job ${jobId}?`)) return;
    try {
      const retried = await api("POST", `/v1/gateway/jobs/${jobId}:retryFailed`, {});
      say(`Retry job ${retried.jobId} created with ${retried.rows.total} rows.`);
      location.hash = `#/jobs/${retried.jobId}`;
    } catch (error) { say(error.message); }
  });
  await load();
}

/* --- runs ------------------------------------------------------------------------------- */

const RUN_TERMINAL = new Set(["SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED"]);

async function runsPage() {
  const main = mount("#t-runs");
  const mounted = state.mounted;
  const load = async () => {
    if (mounted !== state.mounted) return;
    let reply;
    try { reply = await api("GET", "/v1/gateway/runs"); }
    catch (error) { say(error.message); refreshIn(load, IDLE_REFRESH_MS); return; }
    if (mounted !== state.mounted) return;
    say("");
    const rows = reply.runs.map((run) => el("tr", { "data-run": run.runId },
      el("td", { "data-label": "Run" },
        el("a", { href: `#/runs/${run.runId}`, text: run.displayName || run.runId })),
      el("td", { "data-label": "Model", text: run.model }),
      el("td", { "data-label": "State" }, stateBadge(run.state)),
      el("td", { "data-label": "Created", text: when(run.createTime) }),
      el("td", { "data-label": "Rows", class: "num", text: run.rows }),
      el("td", { "data-label": "Pieces", class: "num", text: run.pieces }),
      el("td", { "data-label": "Estimate", class: "num", text: usd(run.estimateUsd) })));
    $("#runs-table tbody", main).replaceChildren(...rows);
    $("#runs-empty", main).hidden = rows.length > 0;
    const live = reply.runs.some((run) => !run.terminal);
    $("#runs-live", main).hidden = !live;
    refreshIn(load, live ? REFRESH_MS : IDLE_REFRESH_MS);
  };
  await load();
}

async function runPage(runId) {
  const main = mount("#t-run");
  const mounted = state.mounted;
  const load = async () => {
    if (mounted !== state.mounted) return;
    let run;
    try { run = await api("GET", `/v1/gateway/runs/${runId}`); }
    catch (error) { say(error.message); return; }
    if (mounted !== state.mounted) return;
    say("");
    $("#run-title", main).textContent = run.displayName || run.runId;
    $("#run-state", main).replaceWith(Object.assign(stateBadge(run.state), { id: "run-state" }));
    const counts = run.counts || {};
    facts($("#run-summary", main), [
      ["Run id", run.runId], ["Model", run.model], ["Owner", run.ownerAlias],
      ["Team", run.team || "-"], ["Created", when(run.createTime)], ["Ended", when(run.endTime)],
      ["Rows", run.rows], ["Pieces", run.pieces],
      ["Per job at most", `${run.limits.rows ?? "-"} lines, ${run.limits.bytes ?? "-"} bytes`],
      ["Outcome", run.terminal ? `${counts.succeeded} ok, ${counts.failed} failed, ${counts.notProcessed} not processed` : "-"],
      ["Input", run.inputUris.join(", ")], ["Results (in input order)", run.outputDirectory],
      ["Retry of", run.retryOf ? el("a", { href: `#/runs/${run.retryOf}`, text: run.retryOf }) : "-"],
      ["Retries", run.retries.length ? el("span", {}, ...run.retries.map((id) =>
        el("a", { href: `#/runs/${id}`, text: id + " " }))) : "-"],
    ]);
    const cost = run.cost;
    facts($("#run-money", main), [
      ["Estimate", usd(run.estimateUsd)],
      ["Cost", el("strong", { id: "run-cost", "data-final": cost.final ? "true" : "false",
        text: usd(cost.totalUsd) + (cost.final ? " (final)" : " so far") })],
      ["Estimated rows", cost.total.estimatedRows || "-"],
      ["Prompt / output tokens", `${cost.total.promptTokens} / ${cost.total.candidatesTokens + cost.total.thoughtsTokens}`],
    ]);
    const costs = new Map(cost.pieces.map((p) => [p.index, p]));
    $("#run-pieces tbody", main).replaceChildren(...run.pieceList.map((piece) => {
      const merged = piece.merge || {};
      const pieceCost = costs.get(piece.index) || {};
      return el("tr", { "data-piece": piece.index },
        el("td", { text: piece.index + 1 }),
        el("td", { class: "num", text: `${piece.firstLine + 1}–${piece.firstLine + piece.rows}` }),
        el("td", {}, el("span", { class: "state", text: piece.state }),
          piece.jobState ? " " : "", piece.jobState ? stateBadge(piece.jobState) : ""),
        el("td", {}, piece.jobId ? el("a", { href: `#/jobs/${piece.jobId}`, text: piece.jobId }) : "-"),
        el("td", { class: "num", text: piece.merge
          ? `${merged.succeeded} / ${merged.failed} / ${merged.notProcessed}` : "-" }),
        el("td", { class: "num", text: piece.jobId ? usd(pieceCost.costUsd) : "-" }),
        el("td", { class: piece.error ? "warn" : "muted",
          text: piece.error || piece.lastError || (piece.attempts > 1 ? `${piece.attempts} attempts` : "") }));
    }));
    $("#run-cancel", main).hidden = run.terminal || run.cancelRequested;
    $("#run-retry", main).hidden = !(run.terminal && run.state !== "SUCCEEDED");
    if (!run.terminal || !cost.final) refreshIn(load);
  };
  $("#run-cancel", main).addEventListener("click", async () => {
    if (!window.confirm(`Cancel run ${runId}? Queued pieces never start; rows already done are billed.`)) return;
    try { await api("POST", `/v1/gateway/runs/${runId}:cancel`, {}); say(`Cancel requested for run ${runId}.`); await load(); }
    catch (error) { say(error.message); }
  });
  $("#run-retry", main).addEventListener("click", async () => {
    if (!window.confirm(`Create a new run from the failed and unprocessed rows of run ${runId}?`)) return;
    try {
      const retried = await api("POST", `/v1/gateway/runs/${runId}:retryFailed`, {});
      say(`Retry run ${retried.runId} created with ${retried.rows} rows.`);
      location.hash = `#/runs/${retried.runId}`;
    } catch (error) { say(error.message); }
  });
  await load();
}

/* --- spend ------------------------------------------------------------------------------ */

const PALETTE = ["#1a56db", "#e3a008", "#0e9f6e", "#e02424", "#7e3af2", "#ff5a1f", "#0694a2", "#9ca3af"];

async function spendPage() {
  const main = mount("#t-spend");
  const form = $("#spend-form", main);
  const today = new Date();
  const start = new Date(today.getTime() - 29 * 86400000);
  form.start.value = start.toISOString().slice(0, 10);
  form.end.value = today.toISOString().slice(0, 10);
  const draw = async () => {
    const query = new URLSearchParams({ start: form.start.value, end: form.end.value });
    const group = form.groupBy.value;
    query.set("groupBy", group === "label" ? `label:${form.label.value.trim()}` : group);
    let reply;
    try { reply = await api("GET", "/v1/gateway/spend/daily?" + query); }
    catch (error) { say(error.message); return; }
    say("");
    $("#spend-total", main).textContent = usd(reply.totalUsd);
    $("#spend-table tbody", main).replaceChildren(...reply.series.map((series) => el("tr", {},
      el("td", { text: series.name || "(none)" }), el("td", { class: "num", text: usd(series.totalUsd) }))));
    const data = {
      labels: reply.days,
      datasets: reply.series.map((series, n) => ({
        label: series.name || "(none)",
        // Display only: the exact figures are the strings in the table.
        data: series.costUsd.map(Number),
        backgroundColor: PALETTE[n % PALETTE.length],
      })),
    };
    if (state.chart) { state.chart.destroy(); }
    state.chart = new Chart($("#spend-chart", main), {
      type: "bar", data,
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "USD" } } },
        plugins: { tooltip: { callbacks: { label: (ctx) =>
          `${ctx.dataset.label}: ${usd(reply.series[ctx.datasetIndex].costUsd[ctx.dataIndex])}` } } },
      },
    });
    window.vbgChart = state.chart;
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); draw(); });
  await Promise.all([draw(), budgets($("#budgets", main))]);
}

function budgetBar(budget) {
  const limit = Number(budget.limitUsd), spent = Number(budget.spentUsd);
  const committed = Number(budget.committedUsd);
  const used = limit > 0 ? (spent + committed) / limit : 0;
  const level = used >= 1 ? "red" : used >= 0.8 ? "amber" : "";
  const pct = (value) => `${Math.min(100, limit > 0 ? (value / limit) * 100 : 0).toFixed(1)}%`;
  const spentBar = el("span", { class: "spent" });
  spentBar.style.width = pct(spent);
  const committedBar = el("span", { class: "committed" });
  committedBar.style.left = pct(spent);
  committedBar.style.width = pct(committed);
  return el("div", { class: `budget ${level}`, "data-level": level || "ok" },
    el("div", {}, el("strong", { text: `${budget.scope} ${budget.subject}` }),
      ` \u2014 ${budget.period}${budget.periodStart ? ` ${budget.periodStart} to ${budget.periodEnd}` : ""}`),
    el("div", { class: "bar", role: "img",
      "aria-label": `${usd(budget.spentUsd)} spent and ${usd(budget.committedUsd)} committed of ${usd(budget.limitUsd)}` },
      spentBar, committedBar),
    el("div", { class: "legend", text:
      `limit ${usd(budget.limitUsd)} \u00b7 spent ${usd(budget.spentUsd)} \u00b7 committed ${usd(budget.committedUsd)} (${budget.openJobs} open jobs) \u00b7 remaining ${usd(budget.remainingUsd)}` }));
}

async function budgets(target) {
  try {
    const reply = await api("GET", "/v1/gateway/budget");
    target.replaceChildren(...(reply.budgets.length ? reply.budgets.map(budgetBar)
      : [el("p", { class: "muted", text: "No budget applies to this key." })]));
  } catch (error) { target.replaceChildren(el("p", { class: "error", text: error.message })); }
}

/* --- keys and teams (master key) -------------------------------------------------------- */

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

async function keysPage() {
  const main = mount("#t-keys");
  const load = async () => {
    const reply = await api("GET", "/v1/gateway/keys");
    $("#keys-table tbody", main).replaceChildren(...reply.keys.map((key) => el("tr", { "data-key": key.id },
      el("td", { text: key.id }), el("td", { text: key.alias }), el("td", { text: key.team || "-" }),
      el("td", { text: key.models.join(", ") || "all" }),
      el("td", { text: key.budgetUsd ? `${usd(key.budgetUsd)}/${key.budgetPeriod}` : "-" }),
      el("td", { text: when(key.createTime) }),
      el("td", {}, el("button", { type: "button", class: "danger", "data-revoke": key.id,
        "aria-label": `Revoke ${key.alias}`, text: "Revoke", onclick: async () => {
          if (!window.confirm(`Revoke key ${key.alias} (${key.id})? Calls with it fail at once.`)) return;
          try { await api("POST", `/v1/gateway/keys/${key.id}:revoke`, {}); say(`Revoked ${key.alias}.`); await load(); }
          catch (error) { say(error.message); }
        } })))));
  };
  const form = $("#key-form", main);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#key-error", main).textContent = "";
    const body = {
      alias: form.alias.value.trim(), team: form.team.value.trim(), models: list(form.models.value),
      inputPrefixes: list(form.inputPrefixes.value), outputPrefixes: list(form.outputPrefixes.value),
      teamAdmin: form.teamAdmin.checked,
    };
    if (form.budgetUsd.value.trim()) {
      body.budgetUsd = form.budgetUsd.value.trim();
      body.budgetPeriod = form.budgetPeriod.value;
    }
    try {
      const created = await api("POST", "/v1/gateway/keys", body);
      $("#key-created", main).hidden = false;
      const shown = $("#key-created-value", main);
      shown.value = created.key;
      shown.focus();
      shown.select();
      form.reset();
      await load();
    } catch (error) { $("#key-error", main).textContent = error.message; }
  });
  $("#key-copy", main).addEventListener("click", async () => {
    const value = $("#key-created-value", main).value;
    try { await navigator.clipboard.writeText(value); say("Copied."); }
    catch (_) { $("#key-created-value", main).select(); say("Press Ctrl+C to copy."); }
  });
  try { await load(); } catch (error) { say(error.message); }
}

async function teamsPage() {
  const main = mount("#t-teams");
  const form = $("#team-form", main);
  const view = $("#team-view", main);
  const show = async (team) => {
    try {
      const reply = await api("GET", `/v1/gateway/teams/${encodeURIComponent(team)}`);
      return reply.status ? budgetBar(reply.status) : el("p", { text: `${team}: no budget` });
    } catch (error) {
      return el("p", { class: "muted", text: `${team}: ${error.message}` });
    }
  };
  const loadAll = async () => {
    const keys = await api("GET", "/v1/gateway/keys");
    const teams = [...new Set(keys.keys.map((k) => k.team).filter(Boolean))].sort();
    view.replaceChildren(...(await Promise.all(teams.map(show))));
    if (!teams.length) view.replaceChildren(el("p", { class: "muted", text: "No team has keys yet." }));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#team-error", main).textContent = "";
    try {
      await api("PUT", `/v1/gateway/teams/${encodeURIComponent(form.team.value.trim())}`,
        { budgetUsd: form.budgetUsd.value.trim(), budgetPeriod: form.budgetPeriod.value });
      say(`Saved the budget of ${form.team.value.trim()}.`);
      await loadAll();
    } catch (error) { $("#team-error", main).textContent = error.message; }
  });
  $("#team-show", main).addEventListener("click", async () => {
    if (form.team.value.trim()) view.replaceChildren(await show(form.team.value.trim()));
  });
  try { await loadAll(); } catch (error) { say(error.message); }
}

/* --- routing ---------------------------------------------------------------------------- */

async function render() {
  const [path] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  if (!sessionStorage.getItem(KEY_STORE)) {
    state.me = null;
    state.page = "signin";
    showChrome();
    mount("#t-signin");
    $("#signin-form").addEventListener("submit", signIn);
    $("#signin-key").focus();
    return;
  }
  if (!state.me) {
    try { state.me = await api("GET", "/v1/gateway/me"); }
    catch (error) { signOut(error.message); return; }
  }
  const page = parts[0] || "jobs";
  state.page = page;
  showChrome();
  document.title = `${page[0].toUpperCase()}${page.slice(1)} \u00b7 Vertex Batch Gateway`;
  if (page === "jobs" && parts[1]) await jobPage(parts[1]);
  else if (page === "runs" && parts[1]) await runPage(parts[1]);
  else if (page === "runs") await runsPage();
  else if (page === "spend") await spendPage();
  else if (page === "keys" && state.me.isMaster) await keysPage();
  else if (page === "teams" && state.me.isMaster) await teamsPage();
  else await jobsPage();
  $("#main").focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => { say(""); render(); });
document.addEventListener("DOMContentLoaded", () => {
  $("#signout").addEventListener("click", () => signOut("Signed out."));
  render();
});
