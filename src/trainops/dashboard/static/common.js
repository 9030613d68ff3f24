// What every page shares: the API client (token, error envelope), the events stream reader, formatting, and the
// header (navigation, token dialog, live indicator, banner). Plain ES module, no build step.

export const API = "/api/v1";
const TOKEN_KEY = "trainops.token";

// ---------------------------------------------------------------------------------------------- API client

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A query string from an object, leaving out null, undefined and "" (arrays repeat the key). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the REST API and answer the envelope's `data`. Throws ApiError with the server's message (the error
 * envelope), and opens the token dialog on 401.
 *   await api("/operations", { params: { limit: 50 } })
 *   await api(`/operations/${id}`, { method: "DELETE", body: { reason: "..." } })
 * With `etag` (the last answer's ETag, or null for none yet) it is a conditional GET that answers
 * { data, etag }, or null when the server says 304 (unchanged): the page then has nothing to parse or redraw.
 *   const answer = await api("/operations", { params, etag: last }); // null: as it was
 */
export async function api(path, { method = "GET", params, body, signal, headers, etag } = {}) {
  const init = { method, signal, headers: { Accept: "application/json", ...authHeaders(), ...(headers || {}) } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (etag !== undefined) {
    init.cache = "no-store"; // the 304 must reach the page, not be turned into the cached 200 by the browser
    if (etag) init.headers["If-None-Match"] = etag;
  }
  let response;
  try {
    response = await fetch(`${API}${path}${query(params)}`, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", `the trainops server cannot be reached (${error.message})`);
  }
  if (response.status === 304) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // a body that is not JSON: a proxy's error page, say
  }
  if (!response.ok || !payload || payload.success === false) {
    const error = (payload && payload.error) || {};
    const apiError = new ApiError(
      response.status,
      error.code || "http_error",
      error.message || `${method} ${path} answered HTTP ${response.status}`,
      error.details,
    );
    if (response.status === 401) askForToken(apiError.message);
    throw apiError;
  }
  if (etag !== undefined) return { data: payload.data, etag: response.headers.get("ETag") };
  return payload.data;
}

// ------------------------------------------------------------------------------------------- events stream

/**
 * Follow an operation's events (GET /operations/{id}/events, server-sent events) with fetch rather than
 * EventSource, so that the bearer token travels in a header. Reconnects after a dropped connection with the
 * last event's id (Last-Event-ID), so nothing is missed or seen twice; stops after the final `diagnosis` (or a
 * 204: the stream had already ended). Answers { close() }.
 *
 *   const stream = followEvents(id, { points: 2000, onEvent: (event) => ..., onState: (state) => ... });
 *
 * onState gets "connecting", "live", "reconnecting", "ended" or "error" (with the ApiError). The wait between
 * tries doubles from `retryMs` up to `maxRetryMs`: a server back after an outage is found within about that.
 */
export function followEvents(
  operationId,
  { points, onEvent, onState = () => {}, retryMs = 1000, maxRetryMs = 4000 } = {},
) {
  const controller = new AbortController();
  let lastId = null;
  let closed = false;
  let failures = 0;

  async function readOnce() {
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const url = `${API}/operations/${encodeURIComponent(operationId)}/events${query({ points })}`;
    const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 204) return "ended";
    if (!response.ok) {
      let error = {};
      try {
        error = (await response.json()).error || {};
      } catch {
        // not the error envelope
      }
      const apiError = new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
      if (response.status === 401) askForToken(apiError.message);
      throw apiError;
    }
    onState("live");
    failures = 0;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let ended = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let boundary;
      while ((boundary = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, "");
        const message = parseEventBlock(block);
        if (!message) continue;
        if (message.id) lastId = message.id;
        if (message.retry) retryMs = message.retry;
        if (message.data === undefined) continue;
        const event = JSON.parse(message.data);
        if (event.event === "diagnosis") ended = true;
        onEvent(event);
      }
    }
    return ended ? "ended" : "dropped";
  }

  (async () => {
    onState("connecting");
    while (!closed) {
      try {
        const outcome = await readOnce();
        if (outcome === "ended") {
          onState("ended");
          return;
        }
      } catch (error) {
        if (closed || error.name === "AbortError") return;
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
          onState("error", error);
          return;
        }
        failures += 1;
      }
      if (closed) return;
      onState("reconnecting");
      await sleep(Math.min(retryMs * 2 ** Math.min(failures, 5), maxRetryMs));
    }
  })();

  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

/** One SSE block's fields: id, event, data (data lines joined), retry; null for a comment-only block. */
export function parseEventBlock(block) {
  const message = {};
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "id") message.id = value;
    else if (field === "event") message.event = value;
    else if (field === "retry" && /^\d+$/.test(value)) message.retry = Number(value);
  }
  if (data.length) message.data = data.join("\n");
  return Object.keys(message).length ? message : null;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------------ metric definitions

let definitionsPromise = null;

/**
 * Every metric definition trainops knows, merged over tasks: { byName: {name: definition}, primary: {task:
 * metric} }. A definition has label, format ("percent", "float", "int"), higher_is_better (true, false, null)
 * and description. A run's own `definitions` (in its metrics block) take precedence over these.
 */
export function metricDefinitions() {
  if (!definitionsPromise) {
    definitionsPromise = api("/metrics/definitions")
      .then((data) => {
        const byName = {};
        const primary = {};
        for (const [task, entry] of Object.entries(data.tasks || {})) {
          primary[task] = entry.primary_metric;
          for (const [name, definition] of Object.entries(entry.definitions || {})) {
            if (!(name in byName)) byName[name] = definition;
          }
        }
        return { byName, primary };
      })
      .catch(() => ({ byName: {}, primary: {} }));
  }
  return definitionsPromise;
}

// ------------------------------------------------------------------------------------------------ formats

/** A metric's value as its definition says: percent, int, or a float with 4 significant digits. */
export function formatMetric(value, definition) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const format = definition && definition.format;
  if (format === "percent") return `${(value * 100).toFixed(value >= 0.9995 || value < 0.001 ? 1 : 2)}%`;
  if (format === "int") return Math.round(value).toLocaleString("en-US");
  return formatNumber(value);
}

/** 4 significant digits; exponent notation below 1e-3 and above 1e6. */
export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(2);
  return Number(value.toPrecision(4)).toString();
}

/** A metric's label: its definition's, else the name itself. */
export function metricLabel(name, definition) {
  return (definition && definition.label) || name;
}

/** "1 h 02 min", "3 min 05 s", "12.3 s", "–". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** Seconds from `start` to `end` (ISO strings; `end` defaults to now), or null. */
export function secondsBetween(start, end) {
  if (!start) return null;
  const from = Date.parse(start);
  const to = end ? Date.parse(end) : Date.now();
  return Number.isFinite(from) && Number.isFinite(to) ? Math.max(0, (to - from) / 1000) : null;
}

/** A timestamp in the reader's own time zone: "2026-12-04 23:46" (today: "23:46:33"). */
export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return `${time}:${pad(date.getSeconds())}`;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** "3 min ago", for title attributes and live rows. */
export function timeAgo(iso) {
  const seconds = secondsBetween(iso, null);
  return seconds === null ? "" : `${formatDuration(seconds)} ago`;
}

// --------------------------------------------------------------------------------------------- operations

export const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
export const ACTIVE = new Set(["pending", "running"]);

/** A status badge element: <span class="badge status-running">running</span>. */
export function statusBadge(status, { cancelRequested = false } = {}) {
  const text = cancelRequested && ACTIVE.has(status) ? "cancelling" : status;
  return h("span", { class: `badge status-${text}` }, text);
}

/** What a run is called: its name, else its strategy or task with the symbol, else its id. */
export function runTitle(operation) {
  if (operation.name) return String(operation.name);
  const meta = operation.metadata || {};
  if (meta.name) return String(meta.name);
  const what = meta.strategy || meta.task || meta.model_name;
  const where = [meta.symbol, meta.timeframe].filter(Boolean).join(" ");
  if (what) return where ? `${what} · ${where}` : String(what);
  return operation.operation_id;
}

/** The run's percentage, 0-100: 100 once completed; else what it reported, or, for a run that stores epochs but
 * reports no progress (a loop logging through trainops.connect), the share of its planned epochs stored. */
export function percentDone(operation) {
  if (operation.status === "completed") return 100;
  const value = operation.progress && operation.progress.percentage;
  if (Number.isFinite(value) && value > 0) return Math.min(100, value);
  const planned = operation.total_epochs;
  const done = operation.epochs_completed;
  return planned > 0 && done > 0 ? Math.min(100, (100 * done) / planned) : 0;
}

/** A progress bar element; `active` animates it. */
export function progressBar(percentage, { active = false, label = "" } = {}) {
  const bar = h("div", { class: `progress${active ? " active" : ""}`, role: "progressbar" });
  bar.setAttribute("aria-valuenow", String(Math.round(percentage)));
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  if (label) bar.setAttribute("aria-label", label);
  const fill = h("div", { class: "progress-fill" });
  fill.style.width = `${percentage.toFixed(1)}%`;
  bar.append(fill);
  return bar;
}

export function runLink(operationId, text) {
  return h("a", { href: `/runs/${encodeURIComponent(operationId)}` }, text || operationId);
}

// -------------------------------------------------------------------------------------------------- DOM

/**
 * Make an element: h("a", { href: "/", class: "x", onclick: fn, dataset: { id: 1 } }, "text", child).
 * Strings become text nodes (never HTML), null and false children are skipped.
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "class") element.className = value;
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace an element's children. */
export function replace(element, ...children) {
  element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

/** The main area. */
export function main() {
  return document.getElementById("main");
}

/** A message across the top of the page ("error", "warning" or "info"); null hides it. */
export function showBanner(message, kind = "error") {
  const banner = document.getElementById("banner");
  if (!message) {
    banner.hidden = true;
    return;
  }
  banner.className = `banner ${kind}`;
  banner.textContent = message;
  banner.hidden = false;
}

/** The live indicator in the header: "live", "connecting", "reconnecting", "ended", "error" or "" (hidden). */
export function setConnection(state) {
  const element = document.getElementById("connection");
  const text = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", ended: "", error: "offline" };
  element.textContent = text[state] || "";
  element.className = `connection ${state || ""}`;
}

/** A palette that stays apart on white and dark backgrounds, for curves and runs. */
export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

export function color(index) {
  return COLORS[index % COLORS.length];
}

// ----------------------------------------------------------------------------------------------- header

function askForToken(message) {
  const dialog = document.getElementById("token-dialog");
  const button = document.getElementById("token-button");
  button.hidden = false;
  showBanner(`${message}. Enter the server's API token (button at the top right).`, "warning");
  if (!dialog.open && typeof dialog.showModal === "function") dialog.showModal();
}

function setUpHeader() {
  const page = document.body.dataset.page;
  const active = page === "run" ? "runs" : page;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
  }
  const dialog = document.getElementById("token-dialog");
  const button = document.getElementById("token-button");
  const input = document.getElementById("token-input");
  if (getToken()) button.hidden = false;
  button.addEventListener("click", () => {
    input.value = getToken();
    dialog.showModal();
  });
  document.getElementById("token-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("token-form").addEventListener("submit", () => {
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    location.reload();
  });
  window.addEventListener("load", () => {
    if (typeof window.uPlot === "undefined") {
      showBanner(
        "The chart library is missing from this install: in a source checkout run `python web/vendor.py` " +
          "(make does it), or install trainops from a built wheel.",
      );
    }
  });
}

setUpHeader();
