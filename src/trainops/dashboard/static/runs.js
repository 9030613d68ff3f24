// The runs page (/): every operation in one table, with its status, progress, phase, best value of its primary
// metric, epochs and times; filtered by status, type and text on the server (so a run of any age is found), sorted
// by any column, kept live by polling the list with its ETag (an unchanged list is a 304 with no body: every 2 s
// while a run is active, every 10 s when none is). Filters and sort live in the address
// (?status=running&type=training&q=eurusd&sort=started&dir=desc), so a view can be shared and survives a reload.
// Rows are updated in place: sort, filter, selection and scroll stay put.

import {
  ACTIVE,
  STATUSES,
  ApiError,
  api,
  formatDuration,
  formatMetric,
  formatTime,
  h,
  main,
  metricDefinitions,
  metricLabel,
  percentDone,
  progressBar,
  replace,
  runLink,
  runTitle,
  secondsBetween,
  setConnection,
  showBanner,
  statusBadge,
  timeAgo,
} from "./common.js";
import * as table from "./table.js";

const POLL_MS = 2000; // while a run is pending or running
const IDLE_POLL_MS = 10000; // while none is: a new run still shows within 10 s
const FILTER_DELAY_MS = 250; // typing in the text filter asks the server once it pauses
const LIST_LIMIT = 1000; // the API's largest page: the newest runs that match the filters
const DEFAULT_SORT = { key: "started", dir: "desc" };
const STATUS_ORDER = ["running", "cancelling", "pending", "failed", "cancelled", "completed"];

// ------------------------------------------------------------------------------------------------ columns

/** The value a run sorts by in each column (null sorts last either way). */
const SORT_VALUES = {
  name: (op) => runTitle(op).toLowerCase(),
  status: (op) => STATUS_ORDER.indexOf(displayStatus(op)),
  progress: (op) => percentDone(op),
  strategy: (op) => whatItTrains(op).toLowerCase() || null,
  best: (op) => (op.best ? op.best.value : null),
  epochs: (op) => op.epochs_completed,
  started: (op) => Date.parse(op.started_at || op.created_at),
  duration: (op) => durationOf(op),
};

const COLUMNS = [
  { key: "name", label: "Name", firstDir: "asc" },
  { key: "status", label: "Status", firstDir: "asc" },
  { key: "progress", label: "Progress", firstDir: "desc" },
  { key: "strategy", label: "Strategy / task", firstDir: "asc" },
  {
    key: "best",
    label: "Best",
    numeric: true,
    firstDir: "desc",
    title: "The best value so far of the metric each run is judged by: its task's primary metric, else validation loss",
  },
  { key: "epochs", label: "Epochs", numeric: true, firstDir: "desc" },
  { key: "started", label: "Started", numeric: true, firstDir: "desc" },
  { key: "duration", label: "Duration", numeric: true, firstDir: "desc" },
];

// ------------------------------------------------------------------------------------------------- state

const state = {
  operations: [], // the newest runs matching the filters, newest first, as the API lists them
  total: 0, // runs matching the filters (may be more than listed)
  counts: {}, // status -> how many runs have it (all runs, from the server)
  types: new Set(), // every operation type seen
  loaded: false,
  filters: { status: "", type: "", q: "" },
  sort: { ...DEFAULT_SORT },
  selected: new Set(),
  definitions: { byName: {}, primary: {} },
};
const rows = new Map(); // operation id -> { tr, cells, signatures, bar, fill }
const view = {};
let pollTimer = null;
let filterTimer = null;
let inFlight = null; // the AbortController of the refresh under way
// ETags of the last answers: the list (of one query) and each status's count
const tags = { list: { key: "", etag: null }, counts: {} };

// ------------------------------------------------------------------------------------------ what a run is

function displayStatus(op) {
  return op.cancel_requested && ACTIVE.has(op.status) ? "cancelling" : op.status;
}

function whatItTrains(op) {
  const meta = op.metadata || {};
  return String(meta.strategy || (meta.task ? meta.task.replaceAll("_", " ") : "") || meta.model_name || "");
}

function durationOf(op) {
  if (!op.started_at) return null;
  return secondsBetween(op.started_at, ACTIVE.has(op.status) ? null : op.completed_at || op.updated_at);
}

/** Whether a listed run matches the filters: the server filtered the list already; this applies a filter changed
 * since at once, and the text's other words (the server looks for one). */
function visible(op) {
  const { status, type, q } = state.filters;
  if (status && op.status !== status) return false;
  if (type && op.operation_type !== type) return false;
  const meta = op.metadata || {};
  const fields = [runTitle(op), op.operation_id, op.notes, meta.strategy, meta.task, meta.symbol, ...(op.tags || [])];
  return table.matchesWords(q, fields);
}

/** The word of the text filter the server looks for (its `q` finds one text): the longest, the most selective. */
function serverWord(q) {
  return q
    .split(/\s+/)
    .filter(Boolean)
    .reduce((longest, word) => (word.length > longest.length ? word : longest), "");
}

/** Sorted by the chosen column, runs without a value last; ties keep the list's order: newest first. */
function sorted(operations) {
  return table.sortItems(operations, SORT_VALUES[state.sort.key] || SORT_VALUES.started, state.sort.dir);
}

// ------------------------------------------------------------------------------------------------ address

function readAddress() {
  const search = new URLSearchParams(location.search);
  const status = search.get("status") || "";
  state.filters.status = STATUSES.includes(status) ? status : "";
  state.filters.type = search.get("type") || "";
  state.filters.q = search.get("q") || "";
  state.sort = table.readSort(search, COLUMNS, state.sort);
}

function writeAddress() {
  const { status, type, q } = state.filters;
  table.writeAddress({ status, type, q }, state.sort, DEFAULT_SORT);
}

// ------------------------------------------------------------------------------------------------- layout

function layout() {
  view.summary = h("p", { class: "muted summary" }, "Loading…");
  view.text = table.textFilter(
    {
      placeholder: "Filter by name, id, symbol…",
      title: "Matches the run's name, id, notes, strategy, task, symbol and tags (every word)",
      "aria-label": "Filter runs by text",
      "data-testid": "text-filter",
    },
    state.filters.q,
    (text) => {
      state.filters.q = text;
      writeAddress();
      render();
      clearTimeout(filterTimer);
      filterTimer = setTimeout(refreshNow, FILTER_DELAY_MS);
    },
  );
  view.status = h("select", { "aria-label": "Filter by status", "data-testid": "status-filter" });
  view.status.addEventListener("change", () => {
    state.filters.status = view.status.value;
    writeAddress();
    render();
    refreshNow();
  });
  view.type = h("select", { "aria-label": "Filter by type", "data-testid": "type-filter" });
  view.type.addEventListener("change", () => {
    state.filters.type = view.type.value;
    writeAddress();
    render();
    refreshNow();
  });
  view.compare = h(
    "button",
    { type: "button", class: "primary", "data-testid": "compare-button", disabled: true, title: "Pick two or more runs" },
    "Compare",
  );
  view.compare.addEventListener("click", () => {
    const ids = [...state.selected];
    if (ids.length >= 2) location.href = `/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
  });

  view.headers = table.sortableHeaders(COLUMNS, sortBy);
  view.selectAll = h("input", { type: "checkbox", "aria-label": "Pick every run shown" });
  view.selectAll.addEventListener("change", () => {
    for (const op of shownOperations()) {
      if (view.selectAll.checked) state.selected.add(op.operation_id);
      else state.selected.delete(op.operation_id);
    }
    render();
  });
  const headCells = [h("th", { class: "pick" }, view.selectAll), ...view.headers.values()];
  view.body = h("tbody", {}, loadingRow());
  view.table = h("table", { class: "data runs", "data-testid": "runs-table" }, h("thead", {}, h("tr", {}, headCells)), view.body);
  view.wrap = h("div", { class: "table-wrap page-table" }, view.table);
  view.empty = h("div", { class: "card page-notice runs-empty", hidden: true }, emptyState());
  view.foot = h("p", { class: "muted foot", hidden: true });

  replace(
    main(),
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Runs"), view.summary),
      (view.toolbar = h("div", { class: "row toolbar" }, view.text, view.status, view.type, view.compare)),
    ),
    view.wrap,
    view.empty,
    view.foot,
  );
}

function loadingRow() {
  return table.placeholderRow(COLUMNS.length + 1, h("span", { class: "spinner" }), "Loading runs…");
}

function emptyState() {
  return [
    h("h2", {}, "No runs yet"),
    h("p", { class: "muted" }, "Runs appear here as soon as they start, and update live. Start one from a strategy file:"),
    h("pre", { class: "snippet" }, "trainops train strategies/mean_reversion.yaml"),
    h("p", { class: "muted" }, "or report your own training loop with the Python client:"),
    h(
      "pre",
      { class: "snippet" },
      [
        "import trainops",
        "",
        `ops = trainops.connect("${location.origin}")`,
        'with ops.run(total_epochs=20, metadata={"name": "my-model"}) as run:',
        "    for epoch in range(20):",
        "        run.log(epoch, train_loss=..., val_loss=...)",
      ].join("\n"),
    ),
  ];
}

function sortBy(column) {
  state.sort = table.nextSort(state.sort, column);
  writeAddress();
  render();
}

// ------------------------------------------------------------------------------------------------- render

function shownOperations() {
  return sorted(state.operations.filter(visible));
}

function render() {
  if (!state.loaded) return;
  const shown = shownOperations();
  const all = allRuns();
  const active = (state.counts.pending || 0) + (state.counts.running || 0);
  const filtering = Boolean(state.filters.status || state.filters.type || state.filters.q);

  renderFilters();
  table.showSort(view.headers, state.sort);

  const noRuns = all === 0 && !filtering;
  view.empty.hidden = !noRuns;
  view.wrap.hidden = noRuns;
  view.toolbar.hidden = noRuns;
  const counted = `${all.toLocaleString("en-US")} run${all === 1 ? "" : "s"}`;
  const filtered = filtering ? ` · ${shown.length === state.operations.length ? state.total.toLocaleString("en-US") : shown.length.toLocaleString("en-US")} shown` : "";
  view.summary.textContent = noRuns ? "Nothing tracked yet" : `${counted} · ${active} active${filtered}`;
  view.foot.hidden = state.total <= state.operations.length;
  const matching = filtering ? "matching runs" : "runs";
  view.foot.textContent = `Showing the newest ${state.operations.length.toLocaleString("en-US")} of ${state.total.toLocaleString("en-US")} ${matching}: narrow the filters to find older ones.`;

  // rows: made once per run, updated in place, moved into order (moving keeps focus, checkboxes and scroll); a
  // picked run stays picked while a filter hides it
  const seen = new Set(state.operations.map((op) => op.operation_id));
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  const wanted = [];
  for (const op of shown) {
    let row = rows.get(op.operation_id);
    if (!row) {
      row = makeRow(op);
      rows.set(op.operation_id, row);
    }
    updateRow(row, op);
    wanted.push(row.tr);
  }
  if (!shown.length && !noRuns) {
    wanted.push(table.noMatchRow(COLUMNS.length + 1, "No runs match these filters. ", "Clear the filters", clearFilters));
  }
  const current = [...view.body.children];
  if (current.length !== wanted.length || current.some((child, index) => child !== wanted[index])) {
    view.body.replaceChildren(...wanted);
  }
  renderSelection(shown);
}

/** Every run, whatever the filters: the sum of the server's count of each status. */
function allRuns() {
  return STATUSES.reduce((sum, status) => sum + (state.counts[status] || 0), 0);
}

function renderFilters() {
  const counts = state.counts;
  const types = new Set(state.types);
  if (state.filters.type) types.add(state.filters.type);
  setOptions(view.status, [["", `All statuses (${allRuns()})`], ...STATUSES.map((s) => [s, `${s} (${counts[s] || 0})`])], state.filters.status);
  setOptions(view.type, [["", "All types"], ...[...types].sort().map((t) => [t, t])], state.filters.type);
}

/** Set a select's options only when they changed (rebuilding would close it under the person's pointer). */
function setOptions(select, options, value) {
  const signature = JSON.stringify(options);
  if (select.dataset.options !== signature) {
    replace(select, options.map(([optionValue, text]) => h("option", { value: optionValue }, text)));
    select.dataset.options = signature;
  }
  if (select.value !== value) select.value = value;
}

function clearFilters() {
  state.filters = { status: "", type: "", q: "" };
  view.text.value = "";
  writeAddress();
  render();
  refreshNow();
}

function renderSelection(shown) {
  const picked = [...state.selected];
  view.compare.disabled = picked.length < 2;
  view.compare.textContent = picked.length ? `Compare (${picked.length})` : "Compare";
  view.compare.title = picked.length < 2 ? "Pick two or more runs to compare" : `Compare ${picked.length} runs`;
  const shownPicked = shown.filter((op) => state.selected.has(op.operation_id)).length;
  view.selectAll.checked = shown.length > 0 && shownPicked === shown.length;
  view.selectAll.indeterminate = shownPicked > 0 && shownPicked < shown.length;
}

// --------------------------------------------------------------------------------------------------- rows

function makeRow(op) {
  const id = op.operation_id;
  const pick = h("input", { type: "checkbox", "aria-label": `Pick ${id} to compare` });
  pick.addEventListener("change", () => {
    if (pick.checked) state.selected.add(id);
    else state.selected.delete(id);
    renderSelection(shownOperations());
  });
  const bar = progressBar(0, { label: "progress" });
  const cells = {
    pick: h("td", { class: "pick" }, pick),
    name: h("td", { class: "col-name" }),
    status: h("td", { class: "col-status" }),
    progress: h("td", { class: "col-progress" }),
    strategy: h("td", { class: "col-strategy" }),
    best: h("td", { class: "col-best num" }),
    epochs: h("td", { class: "col-epochs num" }),
    started: h("td", { class: "col-started num" }),
    duration: h("td", { class: "col-duration num" }),
  };
  const percent = h("span", { class: "percent" });
  const message = h("div", { class: "phase" });
  cells.progress.append(h("div", { class: "progress-line" }, bar, percent), message);
  const tr = h("tr", { "data-testid": "run-row", dataset: { operationId: id } }, Object.values(cells));
  return { tr, cells, pick, bar, fill: bar.firstChild, percent, message, signatures: {} };
}

/** Rebuild one cell only when what it shows changed. */
function cell(row, key, signature, fill) {
  if (row.signatures[key] === signature) return;
  row.signatures[key] = signature;
  fill(row.cells[key]);
}

function updateRow(row, op) {
  const meta = op.metadata || {};
  const status = displayStatus(op);
  row.pick.checked = state.selected.has(op.operation_id);
  row.tr.dataset.status = status;

  const title = runTitle(op);
  const tags = op.tags || [];
  cell(row, "name", `${title}|${op.operation_type}|${tags.join(",")}`, (td) => {
    const secondary = [op.operation_id, op.operation_type !== "training" ? op.operation_type : null].filter(Boolean).join(" · ");
    replace(
      td,
      h("div", { class: "name" }, runLink(op.operation_id, title), tags.map((tag) => h("span", { class: "tag", "data-testid": "run-tag" }, tag))),
      h("div", { class: "sub mono" }, secondary),
    );
    td.title = title;
  });

  const reason = op.cancel_reason ? `cancel asked: ${op.cancel_reason}` : "";
  cell(row, "status", `${status}|${reason}`, (td) => {
    const badge = statusBadge(op.status, { cancelRequested: op.cancel_requested });
    if (reason) badge.title = reason;
    replace(td, badge);
  });

  const percentage = percentDone(op);
  row.fill.style.width = `${percentage.toFixed(1)}%`;
  row.bar.setAttribute("aria-valuenow", String(Math.round(percentage)));
  row.bar.classList.toggle("active", op.status === "running");
  row.bar.classList.toggle("failed", op.status === "failed");
  row.bar.classList.toggle("cancelled", op.status === "cancelled");
  row.percent.textContent = `${Math.floor(percentage)}%`;
  const { text, tone } = phaseText(op);
  if (row.message.textContent !== text) row.message.textContent = text;
  row.message.title = op.status === "failed" && op.error ? op.error : text;
  row.message.className = `phase ${tone}`;

  const what = whatItTrains(op);
  const places = [meta.symbol, meta.timeframe].filter(Boolean);
  const where = places.join(" · ");
  cell(row, "strategy", `${what}|${where}`, (td) => {
    // each text isolated: a right-to-left override in a symbol must not reverse the timeframe after it
    const isolated = places.flatMap((text, i) => [i ? " · " : null, h("bdi", {}, text)]);
    replace(td, h("div", {}, what ? h("bdi", {}, what) : "–"), where ? h("div", { class: "sub" }, isolated) : null);
    td.title = [what, where].filter(Boolean).join("\n"); // whole, where the cell cuts it
  });

  const best = op.best;
  cell(row, "best", JSON.stringify(best), (td) => {
    if (!best) {
      replace(td, h("span", { class: "muted" }, "–"));
      td.title = "";
      return;
    }
    const definition = state.definitions.byName[best.metric];
    const label = metricLabel(best.metric, definition);
    const better = best.mode === "max" ? "higher is better" : "lower is better";
    replace(td, h("div", { class: "value" }, formatMetric(best.value, definition)), h("div", { class: "sub" }, `${label} · ep ${best.epoch}`));
    td.title = `Best ${label} (${best.metric}, ${better}) at epoch ${best.epoch}`;
  });

  cell(row, "epochs", `${op.epochs_completed}|${op.total_epochs}`, (td) => {
    const planned = op.total_epochs ? h("span", { class: "muted" }, ` / ${op.total_epochs.toLocaleString("en-US")}`) : null;
    replace(td, op.epochs_completed.toLocaleString("en-US"), planned);
  });

  const started = op.started_at || op.created_at;
  cell(row, "started", `${started}|${Boolean(op.started_at)}`, (td) => {
    replace(td, shortTime(started));
    td.title = `${op.started_at ? "started" : "created"} ${new Date(started).toLocaleString()}`;
  });
  updateDuration(row, op);
}

function updateDuration(row, op) {
  const text = formatDuration(durationOf(op));
  if (row.cells.duration.textContent !== text) row.cells.duration.textContent = text;
  row.cells.duration.classList.toggle("live", op.status === "running");
}

function phaseText(op) {
  const progress = op.progress || {};
  if (op.status === "failed") return { text: firstLine(op.error) || "Failed", tone: "bad" };
  if (op.status === "cancelled") return { text: op.cancel_reason ? `Cancelled: ${op.cancel_reason}` : "Cancelled", tone: "warn" };
  if (op.cancel_requested && ACTIVE.has(op.status)) {
    return { text: op.cancel_reason ? `Cancel requested: ${op.cancel_reason}` : "Cancel requested", tone: "warn" };
  }
  if (op.status === "pending") return { text: progress.message || `Queued ${timeAgo(op.created_at)}`, tone: "muted" };
  if (op.status === "completed") return { text: progress.message || "Completed", tone: "muted" };
  return { text: progress.message || progress.phase || "Running", tone: "" };
}

/** "23:46" today, "Dec 4 23:46" this year, "2025-12-04" before: the title has the whole time. */
function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return formatTime(iso);
  const now = new Date();
  const time = date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  if (date.getFullYear() === now.getFullYear()) {
    return `${date.toLocaleDateString("en-US", { month: "short", day: "numeric" })} ${time}`;
  }
  return formatTime(iso).slice(0, 10);
}

function firstLine(text) {
  return text ? String(text).split("\n").find((line) => line.trim()) || "" : "";
}

// -------------------------------------------------------------------------------------------------- data

/** The list's query: the filters, sent to the server (one word of the text: it finds one text). */
function listParams() {
  const { status, type, q } = state.filters;
  return { limit: LIST_LIMIT, include: "best", status, operation_type: type, q: serverWord(q) };
}

/** GET with the ETag of the last answer to the same query (`tag`: { key, etag }): null when it is unchanged. */
async function conditional(path, params, tag, signal) {
  const key = JSON.stringify(params);
  const etag = tag.key === key ? tag.etag : null;
  const answer = await api(path, { params, signal, etag });
  tag.key = key;
  tag.etag = answer ? answer.etag : tag.etag;
  return answer ? answer.data : null;
}

/** How many runs have each status, whatever the filters: one small request per status (its total), each a 304 while
 * unchanged. */
async function refreshCounts(signal) {
  const counted = await Promise.all(
    STATUSES.map((status) => {
      tags.counts[status] ||= { key: "", etag: null };
      return conditional("/operations", { limit: 1, status }, tags.counts[status], signal);
    }),
  );
  let changed = false;
  STATUSES.forEach((status, index) => {
    const page = counted[index];
    if (page && state.counts[status] !== page.total) {
      state.counts[status] = page.total;
      changed = true;
    }
  });
  return changed;
}

async function refresh() {
  if (inFlight) inFlight.abort(); // a filter changed: the answer under way is for the old one
  const controller = new AbortController();
  inFlight = controller;
  try {
    const [page, countsChanged] = await Promise.all([
      conditional("/operations", listParams(), tags.list, controller.signal),
      refreshCounts(controller.signal),
    ]);
    if (page) {
      state.operations = page.items;
      state.total = page.total;
      for (const op of page.items) state.types.add(op.operation_type);
    }
    const first = !state.loaded;
    state.loaded = true;
    if (page || countsChanged || first) render();
    setConnection("live");
    showBanner(null);
    if (first) document.body.dataset.ready = "1";
  } catch (error) {
    if (error.name === "AbortError") return;
    setConnection("error");
    const message = error instanceof ApiError ? error.message : String(error);
    showBanner(`Could not load the runs: ${message}. Retrying…`, "error");
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

/** Ask the server now (a filter changed), then go on polling. */
async function refreshNow() {
  clearTimeout(filterTimer);
  clearTimeout(pollTimer);
  await refresh();
  schedule();
}

function schedule() {
  clearTimeout(pollTimer);
  if (document.hidden) return;
  const active = (state.counts.pending || 0) + (state.counts.running || 0) > 0;
  pollTimer = setTimeout(async () => {
    await refresh();
    schedule();
  }, active ? POLL_MS : IDLE_POLL_MS);
}

function tick() {
  if (document.hidden || !state.loaded) return;
  for (const op of state.operations) {
    if (op.status !== "running") continue;
    const row = rows.get(op.operation_id);
    if (row) updateDuration(row, op);
  }
}

async function start() {
  readAddress();
  layout();
  metricDefinitions().then((definitions) => {
    state.definitions = definitions;
    for (const row of rows.values()) delete row.signatures.best; // reformat with the definitions
    render();
  });
  await refresh();
  schedule();
  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", async () => {
    if (document.hidden) {
      clearTimeout(pollTimer);
      return;
    }
    await refresh();
    schedule();
  });
}

start();
