// The run page (/runs/{operation_id}): header and progress, the metric curves with the diagnosis drawn on them
// (best epoch, overfitting, the projection over the epochs left), the recommendation with its evidence, cancel
// with a reason, and the result once the run ended. First draw from one GET of the metrics (thinned to 2,000
// points), then live from the events stream: no reload, no polling while the stream is live.

import {
  ACTIVE,
  ApiError,
  api,
  followEvents,
  formatDuration,
  formatMetric,
  formatNumber,
  formatTime,
  getToken,
  h,
  main,
  metricDefinitions,
  percentDone,
  progressBar,
  replace,
  runTitle,
  secondsBetween,
  setConnection,
  showBanner,
  statusBadge,
  timeAgo,
  API,
} from "./common.js";
import {
  INTEGER_INCRS,
  SECOND_INCRS,
  SPLIT_STYLE,
  axisStyle,
  betterHint,
  createChart,
  emaSmooth,
  epochToX,
  fade,
  familyLabel,
  formatElapsed,
  indexOfX,
  legendAtLatest,
  legendValue,
  metricFamilies,
  metricValue,
  overlayPlugin,
  projectionCurves,
  reportedMetrics,
  scientificTicks,
  tickFormatter,
  toNumber,
  valueTicks,
  yScale,
} from "./chart.js";

const POINTS = 2000;
const VIEW_KEY = "trainops.run.view";
const MAIN_HEIGHT = 360;
const LR_HEIGHT = 130;
const Y_AXIS_WIDTH = 66; // the same on both charts, so that their x axes line up
const REFRESH_MS = 1000;
const OUTAGE_BANNER_MS = 3000; // reconnecting for this long: say the server is unreachable, stop looking live
const EXISTS_MS = 30000; // an ended run (no stream) looks whether it still exists this often while shown
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const ACTIONS = { continue: "continue", stop: "stop", stop_and_restore_best: "stop · restore best" };
const RULES = {
  non_finite: "Non-finite values",
  non_finite_recovered: "Recovered from non-finite values",
  divergence_threshold: "Past the divergence threshold",
  loss_blowup: "Loss blow-up",
  train_loss_rising: "Training loss rising",
  overfitting: "Overfitting",
  plateau: "Plateau",
  no_improvement: "No improvement",
  projected_improvement: "Projection",
};

const operationId = idFromAddress(location.pathname);
const CARD_TEXT_CHARS = 300; // a cancel reason in the run card is cut to this many characters
const path = `/operations/${encodeURIComponent(operationId)}`;
const csvHref = `${API}${path}/metrics?format=csv`;

const state = {
  operation: null,
  diagnosis: null, // the metrics block less its epochs: monitor, mode, best_epoch, signals, projection, ...
  definitions: {}, // the run's own (metrics.definitions)
  fallback: {}, // every definition trainops knows (metricDefinitions()), for metrics the run's block lacks
  records: new Map(), // epoch -> record
  sorted: null, // records by epoch, rebuilt when records change
  names: [],
  thinned: false,
  epochsStored: 0,
  steps: null, // the per-step series, fetched when the step axis is first chosen
  family: null, // the selected family's key
  stream: null,
  firstDrawn: false,
  lastDrawnEpoch: -Infinity, // the newest epoch drawn so far: a newer one marks trainops:epoch-drawn
  resultShown: false,
  // a zoomed-in range of a thinned history, read at full resolution: { from, to, min, max, records, thinned };
  // records null while it is being read. Zooming out drops it (back to the whole thinned curve).
  detail: null,
  detailPending: null, // the window being read: { from, to, min, max }
  offline: false, // the stream has been reconnecting for OUTAGE_BANNER_MS: the page says so, the ticker stopped
  deleted: false, // the run was deleted (purged) while the page was open
};

const view = loadView();
const ui = {};
let mainChart = null;
let lrChart = null;
let refreshTimer = null;
let refreshing = false;
let refreshWanted = false;
let ticker = null;
let detailTimer = null;
let outageTimer = null;
let existsTimer = null;
let detailRequest = 0;

start();

// --------------------------------------------------------------------------------------------------- load

/** The run id in the page's address; one with a broken %-escape is kept as typed (it is then no run's id). */
function idFromAddress(pathname) {
  const typed = pathname.replace(/^\/runs\//, "").replace(/\/+$/, "");
  try {
    return decodeURIComponent(typed);
  } catch {
    return typed;
  }
}

async function start() {
  document.title = `${operationId} · trainops`;
  replace(
    main(),
    h("div", { class: "run-loading", "aria-busy": "true" }, h("div", { class: "spinner" }), "Loading run…"),
  );
  let operation;
  let metrics = null;
  try {
    const [first, second] = await Promise.allSettled([
      api(path),
      api(`${path}/metrics`, { params: { points: POINTS } }),
    ]);
    if (first.status === "rejected") throw first.reason;
    operation = first.value;
    if (second.status === "fulfilled") metrics = second.value.metrics;
  } catch (error) {
    // 422: the id cannot be one (too long, a NUL): no run has it either
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) return renderNotFound();
    return renderLoadError(error);
  }
  state.operation = operation;
  if (metrics) applyMetricsBlock(metrics);
  renderPage();
  renderChart();
  if (!mainChart) document.body.dataset.ready = "1"; // nothing to draw yet: the empty state is what there is
  afterFirstDraw();
}

function afterFirstDraw() {
  metricDefinitions().then((known) => {
    state.fallback = known.byName || {};
    if (state.names.some((name) => !state.definitions[name])) {
      renderMetricSelect();
      renderChart();
    }
  });
  loadArtifacts();
  watchExistence();
  if (TERMINAL.has(state.operation.status)) {
    renderResult();
    return;
  }
  state.stream = followEvents(operationId, { points: POINTS, onEvent, onState: onStreamState });
  startTicker();
}

function startTicker() {
  clearInterval(ticker);
  ticker = TERMINAL.has(state.operation.status) || state.deleted ? null : setInterval(renderDuration, 1000);
}

function stopTicker() {
  clearInterval(ticker);
  ticker = null;
}

/** An ended run has no stream, and a run is purged only once it ended: look whether it still exists when the tab
 * is shown again, and now and then while it is shown (one small GET; the stream's 404 tells a live page). */
function watchExistence() {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") checkExists();
  });
  existsTimer = setInterval(() => {
    if (document.visibilityState === "visible" && TERMINAL.has(state.operation.status)) checkExists();
  }, EXISTS_MS);
}

async function checkExists() {
  if (state.deleted) return;
  try {
    await api(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) markDeleted();
  }
}

/** The run was deleted while the page showed it: say so, stop following it, and disable what needs it. */
function markDeleted() {
  if (state.deleted) return;
  state.deleted = true;
  if (state.stream) state.stream.close();
  state.stream = null;
  clearTimeout(outageTimer);
  clearInterval(existsTimer);
  clearTimeout(refreshTimer);
  stopTicker();
  setConnection("");
  document.body.dataset.deleted = "1";
  showBanner(
    "This run was deleted: it is no longer on the server. What the page shows is what it held before; Compare, Export CSV and Cancel are disabled.",
    "warning",
  );
  if (ui.cancelDialog && ui.cancelDialog.open) ui.cancelDialog.close();
  if (ui.actions) renderHeader();
}

/** Take in a metrics block: its diagnosis, definitions and epochs. `whole`: it answered the whole history (not
 * only the epochs after since_epoch), so its `thinned` says whether the page holds every epoch. */
function applyMetricsBlock(metrics, { whole = true } = {}) {
  const { epochs, definitions, thinned, ...diagnosis } = metrics;
  state.diagnosis = { ...(state.diagnosis || {}), ...diagnosis };
  state.definitions = { ...state.definitions, ...(definitions || {}) };
  if (whole) state.thinned = Boolean(thinned);
  if (metrics.epochs_stored) state.epochsStored = metrics.epochs_stored;
  mergeEpochs(epochs || []);
}

/** Merge epoch records by epoch number (a re-sent epoch replaces its record); answers how many were new. */
function mergeEpochs(epochs) {
  let added = 0;
  for (const record of epochs) {
    if (!state.records.has(record.epoch)) added += 1;
    state.records.set(record.epoch, record);
  }
  if (epochs.length) {
    state.sorted = null;
    const names = reportedMetrics(sortedRecords());
    if (names.join("|") !== state.names.join("|")) {
      state.names = names;
      if (ui.metricSelect) renderMetricSelect();
    }
  }
  return added;
}

function sortedRecords() {
  if (!state.sorted) state.sorted = [...state.records.values()].sort((a, b) => a.epoch - b.epoch);
  return state.sorted;
}

function lastEpoch() {
  const records = sortedRecords();
  return records.length ? records[records.length - 1].epoch : null;
}

/** Whether the run will train no further: it failed, was cancelled, or a cancel was asked (it stops at its next
 * check). Its diagnosis is then what it was when the run stopped, with no projection of epochs that won't come. */
function stopped() {
  const op = state.operation;
  return op.status === "failed" || op.status === "cancelled" || (Boolean(op.cancel_requested) && ACTIVE.has(op.status));
}

function firstLine(text) {
  return text ? String(text).split("\n").find((line) => line.trim()) || "" : "";
}

function definition(name) {
  return state.definitions[name] || state.fallback[name] || null;
}

// --------------------------------------------------------------------------------------------------- live

function onEvent(event) {
  switch (event.event) {
    case "epochs":
      if (event.thinned) {
        // a catch-up thinned for display: the history is whole on the server, the page holds a sample of it
        state.thinned = true;
        mergeEpochs(event.epochs || []);
      } else state.epochsStored += mergeEpochs(event.epochs || []);
      state.epochsStored = Math.max(state.epochsStored, state.records.size);
      renderChart();
      renderHeaderFacts();
      scheduleDiagnosisRefresh();
      if (state.xMode === "step" && state.steps) loadSteps();
      break;
    case "progress":
      state.operation.progress = event.progress;
      renderProgress();
      break;
    case "status":
      Object.assign(state.operation, {
        status: event.status,
        cancel_requested: event.cancel_requested,
        cancel_reason: event.cancel_reason,
        error: event.error,
        started_at: event.started_at,
        completed_at: event.completed_at,
        epochs_completed: event.epochs_completed,
        total_epochs: event.total_epochs,
      });
      renderHeader();
      renderProgress();
      renderDetails();
      renderDiagnosis(); // a failed or cancelled run: no projection, no advice to go on
      renderChart();
      if (TERMINAL.has(event.status)) {
        endCancelDialog();
        onEnded();
      }
      break;
    case "recommendation":
      applyDiagnosis(event.diagnosis);
      break;
    case "diagnosis":
      state.operation.status = event.status;
      if (event.diagnosis) applyDiagnosis(event.diagnosis);
      renderHeader();
      onEnded();
      break;
    default:
      break;
  }
}

function onStreamState(streamState, error) {
  if (state.deleted) return;
  setConnection(streamState);
  if (streamState === "error" && error) {
    if (error instanceof ApiError && error.status === 404) {
      markDeleted();
      return;
    }
    showBanner(`Live updates stopped: ${error.message}`, "warning");
  }
  if (streamState === "reconnecting" && !outageTimer && !state.offline) {
    // a dropped connection that comes straight back is no outage; one that does not, after a few seconds, is
    outageTimer = setTimeout(onOutage, OUTAGE_BANNER_MS);
  }
  if (streamState === "live" || streamState === "ended") {
    clearTimeout(outageTimer);
    outageTimer = null;
    if (state.offline) {
      state.offline = false;
      delete document.body.dataset.offline;
      startTicker();
      renderDuration();
    }
    showBanner(null);
  }
}

/** The stream has been reconnecting for a while: the server is down or unreachable. Say so plainly, and stop the
 * duration ticking as if the page still knew the run was going on. */
function onOutage() {
  outageTimer = null;
  if (state.deleted) return;
  state.offline = true;
  document.body.dataset.offline = "1";
  stopTicker();
  const since = new Date().toLocaleTimeString("en-GB");
  showBanner(
    `The trainops server cannot be reached (since ${since}); reconnecting… The page shows the run as it was then, and catches up when the server answers again.`,
    "error",
  );
}

function applyDiagnosis(diagnosis) {
  state.diagnosis = { ...(state.diagnosis || {}), ...diagnosis };
  renderDiagnosis();
  renderChart();
}

/** The diagnosis follows every epoch (the best epoch moves, the projection shortens), but the stream sends it only
 * when the recommendation changes: after new epochs, ask for the diagnosis once they settle (at most once a
 * second, one request at a time; ETag-cheap). */
function scheduleDiagnosisRefresh() {
  if (refreshTimer) {
    if (refreshing) refreshWanted = true; // epochs came after the request left: ask again once it is answered
    return;
  }
  refreshTimer = setTimeout(async () => {
    if (refreshing) {
      refreshTimer = null;
      scheduleDiagnosisRefresh();
      return;
    }
    refreshing = true;
    try {
      const since = lastEpoch();
      // no points=: only the epochs after `since` come back, and the server answers from its cached diagnosis
      const answer = await api(`${path}/metrics`, { params: { since_epoch: since } });
      if (answer) {
        applyMetricsBlock(answer.metrics, { whole: false });
        renderDiagnosis();
        renderChart();
      }
    } catch (error) {
      // the stream keeps the page live; the diagnosis catches up on the next epochs
      if (error instanceof ApiError && error.status === 404) markDeleted();
    } finally {
      refreshing = false;
      refreshTimer = null;
      if (refreshWanted) {
        refreshWanted = false;
        scheduleDiagnosisRefresh();
      }
    }
  }, REFRESH_MS);
}

async function onEnded() {
  stopTicker();
  renderDuration();
  if (state.resultShown) return;
  state.resultShown = true;
  try {
    state.operation = { ...state.operation, ...(await api(path)) };
    const answer = await api(`${path}/metrics`, { params: { points: POINTS } });
    applyMetricsBlock(answer.metrics);
  } catch {
    // keep what the stream said
  }
  renderHeader();
  renderProgress();
  renderDetails();
  renderDiagnosis();
  renderChart();
  renderResult();
  loadArtifacts();
}

// ------------------------------------------------------------------------------------------------ layout

function renderPage() {
  ui.title = h("h1", { "data-testid": "run-title" });
  ui.status = h("span", { "data-testid": "run-status", class: "run-status" });
  ui.meta = h("div", { class: "run-meta" });
  ui.actions = h("div", { class: "run-actions" });
  ui.progress = h("section", { class: "card progress-card", "data-testid": "progress" });
  ui.metricSelect = h("select", { "data-testid": "metric-select", "aria-label": "metric", onchange: onMetricChange });
  ui.metricHint = h("span", { class: "metric-hint" });
  ui.xAxis = h(
    "div",
    { class: "segmented", "data-testid": "x-axis", role: "group", "aria-label": "x axis" },
    ...[
      ["epoch", "Epoch"],
      ["step", "Step"],
      ["time", "Wall time"],
    ].map(([mode, label]) =>
      h(
        "button",
        { type: "button", "data-testid": `x-${mode}`, "data-mode": mode, onclick: () => setXMode(mode) },
        label,
      ),
    ),
  );
  ui.logY = h("input", { type: "checkbox", "data-testid": "log-y", onchange: onLogY });
  ui.logY.checked = view.logY;
  ui.smoothing = h("input", {
    type: "range",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: String(view.smoothing),
    "data-testid": "smoothing",
    "aria-label": "smoothing",
    oninput: onSmoothing,
  });
  ui.smoothingValue = h("output", { class: "smoothing-value" });
  ui.chartNote = h("div", { class: "chart-note" });
  ui.mainChart = h("div", { class: "chart main-chart", "data-testid": "main-chart", role: "figure" });
  ui.lrBlock = h("div", { class: "lr-block", hidden: true }, h("div", { class: "lr-title" }, "Learning rate"));
  ui.lrChart = h("div", { class: "chart lr-chart", "data-testid": "lr-chart" });
  ui.lrBlock.append(ui.lrChart);
  ui.diagnosis = h("section", { class: "card diagnosis-card", "data-testid": "recommendation" });
  ui.signals = h("section", { class: "card signals-card" });
  ui.details = h("section", { class: "card details-card" });
  ui.result = h("div", { class: "result-slot" });
  ui.artifacts = h("div", { class: "artifacts-slot" });

  const toolbar = h(
    "div",
    { class: "chart-toolbar" },
    h("div", { class: "metric-pick" }, ui.metricSelect, ui.metricHint),
    h("span", { class: "spacer" }),
    h("div", { class: "tool" }, h("span", { class: "tool-label" }, "x"), ui.xAxis),
    h("label", { class: "check tool" }, ui.logY, "Log y"),
    h(
      "label",
      { class: "tool smoothing" },
      h("span", { class: "tool-label" }, "Smoothing"),
      ui.smoothing,
      ui.smoothingValue,
    ),
  );

  replace(
    main(),
    h(
      "header",
      { class: "page-head run-head" },
      h("div", { class: "run-head-main" }, h("div", { class: "run-title-row" }, ui.title, ui.status), ui.meta),
      ui.actions,
    ),
    ui.progress,
    ui.result, // an ended run's outcome first, its curves below
    h(
      "div",
      { class: "run-grid" },
      h("section", { class: "card chart-card" }, toolbar, ui.mainChart, ui.chartNote, ui.lrBlock),
      h("aside", { class: "run-side" }, ui.diagnosis, ui.signals, ui.details),
    ),
    ui.artifacts,
  );
  buildCancelDialog();
  renderHeader();
  renderProgress();
  renderMetricSelect();
  renderToolbar();
  renderDiagnosis();
  renderDetails();
}

function renderHeader() {
  const op = state.operation;
  ui.title.textContent = runTitle(op);
  ui.title.title = runTitle(op);
  document.title = `${runTitle(op)} · trainops`;
  replace(ui.status, statusBadge(op.status, { cancelRequested: op.cancel_requested }));
  renderHeaderFacts();
  const active = ACTIVE.has(op.status);
  if (state.deleted) {
    // the actions stay where they were, disabled: a link to compare or export a run that is gone would 404
    const disabled = (label) => h("button", { type: "button", disabled: true, title: "the run was deleted" }, label);
    replace(
      ui.actions,
      h("span", { class: "deleted-note", "data-testid": "deleted-note" }, "This run was deleted"),
      disabled("Compare"),
      disabled("Export CSV"),
      active ? disabled("Cancel run") : null,
    );
    return;
  }
  const links = [
    h(
      "a",
      {
        class: "button-link",
        href: `/compare?ids=${encodeURIComponent(op.operation_id)}`,
        title: "overlay this run with others",
      },
      "Compare",
    ),
    h(
      "a",
      {
        class: "button-link",
        "data-testid": "export-csv",
        title: "every stored epoch, as CSV (GET …/metrics?format=csv)",
        href: csvHref,
        download: `${operationId}.csv`,
        onclick: (event) => downloadWithToken(event, csvHref, `${operationId}.csv`),
      },
      "Export CSV",
    ),
  ];
  if (!active) replace(ui.actions, links);
  else if (op.cancel_requested) {
    replace(
      ui.actions,
      links,
      h("button", { type: "button", class: "danger", disabled: true, "data-testid": "cancel-button" }, "Cancelling…"),
    );
  } else {
    replace(
      ui.actions,
      links,
      h(
        "button",
        { type: "button", class: "danger", "data-testid": "cancel-button", onclick: openCancel },
        "Cancel run",
      ),
    );
  }
}

function renderHeaderFacts() {
  const op = state.operation;
  const meta = op.metadata || {};
  const facts = [];
  const fact = (label, value, attrs = {}) => {
    if (value === null || value === undefined || value === "") return;
    // text is cut to the header's width with an ellipsis, whole in its tooltip (a strategy may be a long path)
    const shown = typeof value === "string" ? h("span", { class: "fact-value", title: value }, value) : value;
    facts.push(h("span", { class: "fact", ...attrs }, h("span", { class: "fact-label" }, label), shown));
  };
  facts.push(
    h(
      "span",
      { class: "fact id" },
      h("code", {}, op.operation_id),
      h(
        "button",
        {
          type: "button",
          class: "copy",
          title: "copy the id",
          onclick: (event) => copyText(op.operation_id, event.currentTarget),
        },
        "copy",
      ),
    ),
  );
  fact("strategy", meta.strategy);
  fact("task", meta.task);
  fact("model", meta.model_name);
  fact("symbol", meta.symbol);
  fact("timeframe", meta.timeframe);
  if (op.operation_type !== "training") fact("type", op.operation_type);
  fact("started", op.started_at ? formatTime(op.started_at) : null, {
    title: op.started_at ? `${op.started_at} (${timeAgo(op.started_at)})` : "",
  });
  ui.duration = h("span", { class: "num" });
  fact("duration", ui.duration);
  const planned = op.total_epochs || (state.diagnosis && state.diagnosis.total_epochs_planned);
  const done = Math.max(op.epochs_completed || 0, state.epochsStored || 0, state.records.size);
  if (done || planned)
    fact(
      "epochs",
      planned ? `${done.toLocaleString("en-US")} / ${planned.toLocaleString("en-US")}` : done.toLocaleString("en-US"),
    );
  replace(ui.meta, facts);
  renderDuration();
}

function renderDuration() {
  if (!ui.duration || !state.operation) return;
  const op = state.operation;
  const seconds = secondsBetween(op.started_at, TERMINAL.has(op.status) ? op.completed_at : null);
  ui.duration.textContent = seconds === null ? "–" : formatDuration(seconds);
}

function renderProgress() {
  const op = state.operation;
  const progress = op.progress || {};
  const active = ACTIVE.has(op.status);
  const percentage = percentDone(op);
  let phase = progress.phase || (active ? op.status : "");
  let message = progress.message || "";
  if (!message) message = op.status === "pending" ? "Waiting to start…" : active ? "Running…" : "";
  // an ended (or ending) run: its status and why, not the phase it was in ("training Epoch 39/60")
  const ending = op.cancel_requested && active;
  if (op.status === "failed") message = firstLine(op.error) || "Failed";
  else if (op.status === "cancelled") message = op.cancel_reason ? `Cancelled: ${op.cancel_reason}` : "Cancelled";
  else if (op.status === "completed") message = progress.message || "Completed";
  else if (ending) message = op.cancel_reason ? `Cancel requested: ${op.cancel_reason}` : "Cancel requested";
  if (TERMINAL.has(op.status)) phase = op.status;
  else if (ending) phase = "cancelling";
  const where = [];
  const said = message.toLowerCase();
  const live = active && !ending;
  if (live && !said.includes("epoch") && progress.epoch !== null && progress.epoch !== undefined && progress.total_epochs)
    where.push(`epoch ${progress.epoch}/${progress.total_epochs}`);
  if (live && !said.includes("batch") && progress.batch !== null && progress.batch !== undefined && progress.total_batches)
    where.push(`batch ${progress.batch}/${progress.total_batches}`);
  ui.progress.dataset.status = op.status;
  replace(
    ui.progress,
    h(
      "div",
      { class: "progress-top" },
      phase ? h("span", { class: `phase phase-${phase}` }, phase) : null,
      h(
        "span",
        { class: "progress-message", "data-testid": "progress-message", title: op.status === "failed" && op.error ? op.error : message },
        message,
      ),
      h("span", { class: "spacer" }),
      where.length ? h("span", { class: "progress-where muted" }, where.join(" · ")) : null,
      h(
        "span",
        { class: "progress-percent num" },
        `${percentage.toFixed(percentage >= 100 || percentage === 0 ? 0 : 1)}%`,
      ),
    ),
    progressBar(percentage, { active: op.status === "running", label: message || "progress" }),
  );
}

// ----------------------------------------------------------------------------------------------- toolbar

function loadView() {
  try {
    const saved = JSON.parse(localStorage.getItem(VIEW_KEY) || "{}");
    return {
      smoothing: Math.min(Math.max(Number(saved.smoothing) || 0, 0), 0.99),
      logY: Boolean(saved.logY),
      xMode: ["epoch", "step", "time"].includes(saved.xMode) ? saved.xMode : "epoch",
    };
  } catch {
    return { smoothing: 0, logY: false, xMode: "epoch" };
  }
}

function saveView() {
  try {
    localStorage.setItem(VIEW_KEY, JSON.stringify({ smoothing: view.smoothing, logY: view.logY, xMode: view.xMode }));
  } catch {
    // a browser without storage: the view is not remembered
  }
}

function renderMetricSelect() {
  const monitor = state.diagnosis && state.diagnosis.monitor;
  const families = metricFamilies(state.names, monitor);
  state.families = families;
  if (!families.some((family) => family.key === state.family)) state.family = families.length ? families[0].key : null;
  replace(
    ui.metricSelect,
    families.map((family) => {
      const option = h(
        "option",
        { value: family.key },
        familyLabel(family, allDefinitions()) + (family.names.includes(monitor) ? " · monitored" : ""),
      );
      option.title = family.names.join(" & ");
      return option;
    }),
  );
  ui.metricSelect.disabled = !families.length;
  if (!families.length) ui.metricSelect.append(h("option", { value: "" }, "no metrics yet"));
  if (state.family) ui.metricSelect.value = state.family;
  renderMetricHint();
}

function allDefinitions() {
  return { ...state.fallback, ...state.definitions };
}

function currentFamily() {
  return (state.families || []).find((family) => family.key === state.family) || null;
}

function renderMetricHint() {
  const family = currentFamily();
  if (!family) {
    replace(ui.metricHint);
    return;
  }
  const shown = family.val || family.names[0];
  const def = definition(shown);
  const hint = betterHint(def);
  replace(
    ui.metricHint,
    hint ? h("span", { class: `better ${def.higher_is_better ? "up" : "down"}`, "data-testid": "better" }, hint) : null,
  );
  ui.metricHint.title = `${family.names.join(" and ")}${def && def.description ? `: ${def.description}` : ""}`;
}

function renderToolbar() {
  const records = sortedRecords();
  const available = {
    epoch: true,
    step: records.some((record) => record.step !== null && record.step !== undefined),
    time: records.some((record) => record.timestamp),
  };
  if (!available[view.xMode]) view.xMode = "epoch";
  state.xMode = view.xMode;
  for (const button of ui.xAxis.querySelectorAll("button")) {
    const mode = button.dataset.mode;
    button.setAttribute("aria-pressed", String(mode === view.xMode));
    button.disabled = !available[mode];
    button.title = available[mode]
      ? ""
      : mode === "step"
        ? "this run reports no global step with its epochs"
        : "this run's epochs carry no time";
  }
  ui.logY.checked = view.logY;
  ui.smoothing.value = String(view.smoothing);
  ui.smoothingValue.textContent = view.smoothing ? view.smoothing.toFixed(2) : "off";
}

function onMetricChange() {
  state.family = ui.metricSelect.value;
  renderMetricHint();
  renderChart();
}

function setXMode(mode) {
  view.xMode = mode;
  saveView();
  renderToolbar();
  if (mode === "step" && !state.steps) loadSteps();
  renderChart();
}

function onLogY() {
  view.logY = ui.logY.checked;
  saveView();
  renderChart();
}

function onSmoothing() {
  view.smoothing = Number(ui.smoothing.value);
  saveView();
  renderToolbar();
  renderChart();
}

let stepsLoading = false;
async function loadSteps() {
  if (stepsLoading) return;
  stepsLoading = true;
  try {
    const last =
      state.steps && state.steps.points.length ? state.steps.points[state.steps.points.length - 1].step : null;
    const answer = await api(`${path}/steps`, { params: { since_step: last } });
    if (!state.steps || answer.thinned) state.steps = answer;
    else state.steps.points.push(...answer.points);
    if (state.xMode === "step") renderChart();
  } catch {
    state.steps = state.steps || { points: [] };
  } finally {
    stepsLoading = false;
  }
}

// ------------------------------------------------------------------------------------------------- chart

/** The x of each record on the chosen axis (null where the record cannot be placed), and the epoch -> x map. */
function xColumn(records, mode) {
  if (mode === "epoch") return records.map((record) => record.epoch);
  if (mode === "step")
    return records.map((record) => (record.step === null || record.step === undefined ? null : record.step));
  let origin = null;
  const times = records.map((record) => {
    const time = record.timestamp ? Date.parse(record.timestamp) : NaN;
    return Number.isFinite(time) ? time : null;
  });
  for (const time of times) if (time !== null && (origin === null || time < origin)) origin = time;
  return times.map((time) => (time === null ? null : (time - origin) / 1000));
}

function buildModel() {
  const family = currentFamily();
  const all = displayRecords();
  const mode = state.xMode || "epoch";
  const xsAll = xColumn(all, mode);
  let rows = [];
  for (let i = 0; i < all.length; i++) if (xsAll[i] !== null) rows.push([xsAll[i], all[i]]);
  if (mode !== "epoch") {
    rows.sort((a, b) => a[0] - b[0] || a[1].epoch - b[1].epoch);
    rows = rows.filter((row, i) => i === rows.length - 1 || rows[i + 1][0] !== row[0]); // uPlot wants distinct x
  }
  const xs = rows.map((row) => row[0]);
  const records = rows.map((row) => row[1]);
  const toX = mode === "epoch" ? (epoch) => epoch : epochToX(rows.map((row) => [row[1].epoch, row[0]]));
  const model = {
    family,
    mode,
    xs,
    records,
    toX,
    series: [],
    columns: [],
    hidden: [],
    bands: [],
    extra: [],
    marks: null,
  };
  if (!family || !records.length) return model;

  const log = view.logY;
  const smoothing = view.smoothing;
  const diagnosis = state.diagnosis || {};
  const monitor = diagnosis.monitor;
  const roles = family.names.map((name) => [
    name,
    name === family.train ? "train" : name === family.val ? "val" : "single",
  ]);
  const nonFinite = [];
  for (const [name, role] of roles) {
    const style = SPLIT_STYLE[role];
    const def = definition(name);
    const raw = new Array(records.length);
    const nonFiniteAt = new Map(); // x -> NaN, ±Infinity or a value a log axis cannot draw: the legend reads it at the gap
    for (let i = 0; i < records.length; i++) {
      const value = metricValue(records[i], name);
      if (value === null)
        raw[i] = undefined; // not reported this epoch: the line goes on
      else if (!Number.isFinite(value)) {
        raw[i] = null; // NaN or infinite: a gap, and a mark
        nonFiniteAt.set(xs[i], value);
        nonFinite.push({
          x: xs[i],
          label: `${name} ${Number.isNaN(value) ? "NaN" : value > 0 ? "+∞" : "−∞"}`,
          epoch: records[i].epoch,
        });
      } else if (log && value <= 0) {
        raw[i] = null; // off a log axis: a gap, not a line drawn across the epochs left out
        nonFiniteAt.set(xs[i], value);
      } else raw[i] = value;
    }
    if (smoothing > 0) {
      model.series.push({
        label: `${name} (raw)`,
        stroke: fade(style.stroke, 0.28),
        width: 1,
        points: { show: false },
        value: legendValue(def, nonFiniteAt),
      });
      model.columns.push(raw);
      model.hidden.push(model.series.length);
    }
    model.series.push({
      label: name,
      stroke: style.stroke,
      width: style.width,
      dash: style.dash || undefined,
      points: { show: records.length < 40, size: 4 },
      value: legendValue(def, nonFiniteAt),
    });
    model.columns.push(smoothing > 0 ? emaSmooth(raw, smoothing) : raw);
  }

  // the per-step series under the epochs, faint, when the step axis is chosen and the run reported one
  if (mode === "step" && state.steps && state.steps.points.length) {
    const trainName = family.train || family.names[0];
    const candidates = [trainName, trainName.replace(/^train_/, ""), "loss"].filter(
      (name, i, list) => list.indexOf(name) === i,
    );
    const points = state.steps.points;
    const stepName = candidates.find((name) =>
      points.some((point) => point.metrics && point.metrics[name] !== undefined),
    );
    if (stepName) {
      const stepXs = [];
      const stepYs = [];
      let previous = -Infinity;
      for (const point of points) {
        const value = toNumber(point.metrics[stepName]);
        if (value === null || point.step <= previous) continue;
        previous = point.step;
        stepXs.push(point.step);
        stepYs.push(!Number.isFinite(value) || (log && value <= 0) ? null : value);
      }
      model.extra.push({ xs: stepXs, columns: [smoothing > 0 ? emaSmooth(stepYs, smoothing) : stepYs] });
      model.series.push({
        label: `${stepName} per step`,
        stroke: fade(SPLIT_STYLE.train.stroke, 0.35),
        width: 1,
        points: { show: false },
        value: legendValue(definition(trainName)),
      });
    }
  }

  // the projection over the epochs left, when the monitored metric is on the chart
  const projection = diagnosis.projection;
  model.projection = null;
  if (projection && family.names.includes(monitor) && toX && !stopped()) {
    const evidence = projection.evidence || {};
    const monitorValues = records
      .map((record) => metricValue(record, monitor))
      .filter((value) => value !== null && Number.isFinite(value));
    const windowPoints = state.thinned
      ? null
      : records.filter(
          (record) =>
            record.epoch >= evidence.from_epoch &&
            record.epoch <= evidence.to_epoch &&
            Number.isFinite(metricValue(record, monitor)),
        ).length;
    const curves = projectionCurves(evidence, {
      mode: diagnosis.mode,
      windowPoints: windowPoints || null,
      nonNegative: diagnosis.mode === "min" && monitorValues.every((value) => value >= 0),
    });
    if (curves) {
      const px = curves.epochs.map(toX);
      const clean = (values) => values.map((value) => (log && value <= 0 ? undefined : value));
      const def = definition(monitor);
      const base = model.series.length + 1; // uPlot's index of the first projection series (0 is x)
      model.extra.push({ xs: px, columns: [clean(curves.upper), clean(curves.lower), clean(curves.trend)] });
      const bandColor = evidence.worth_continuing && !evidence.stall_backed ? "#16a34a" : "#64748b";
      for (const label of ["projection high", "projection low"]) {
        model.series.push({ label, stroke: fade(bandColor, 0.35), width: 0.75, points: { show: false }, value: legendValue(def) });
      }
      model.series.push({
        label: "projection",
        stroke: fade(bandColor, 0.9),
        width: 1.5,
        dash: [2, 4],
        points: { show: false },
        value: (u, value, seriesIdx, idx) => {
          if (value === null || value === undefined || idx === null) return "–";
          const low = u.data[base + 1][idx];
          const high = u.data[base][idx];
          return `${formatMetric(value, def)} (${formatMetric(low, def)}–${formatMetric(high, def)})`;
        },
      });
      model.hidden.push(base, base + 1);
      model.bands.push({ series: [base, base + 1], fill: fade(bandColor, 0.16) });
      model.projection = { curves, evidence, endX: px[px.length - 1], def };
    }
  }

  model.xMin = xs[0];
  model.xMax = Math.max(xs[xs.length - 1], model.projection ? model.projection.endX : -Infinity);
  model.marks = () => diagnosisMarks(model, nonFinite);
  return model;
}

/** The diagnosis as marks on the plot: best epoch, overfitting region, projection label, non-finite values. */
function diagnosisMarks(model, nonFinite) {
  const diagnosis = state.diagnosis || {};
  const family = model.family;
  const marks = { lines: [], regions: [], dots: [], labels: [] };
  const last = model.records[model.records.length - 1];
  const xOf = model.toX; // exact at the epochs drawn, between and past them at their pace
  if (diagnosis.overfitting_since_epoch !== null && diagnosis.overfitting_since_epoch !== undefined && last) {
    marks.regions.push({
      from: xOf(diagnosis.overfitting_since_epoch),
      to: model.xs[model.xs.length - 1],
      label: `overfitting since epoch ${diagnosis.overfitting_since_epoch}`,
      className: "overfit",
      testid: "overfitting-region",
    });
  }
  // the best epoch is the monitored metric's: marked on its chart only (another metric's best may be elsewhere)
  if (diagnosis.best_epoch !== null && diagnosis.best_epoch !== undefined && family.names.includes(diagnosis.monitor)) {
    const x = xOf(diagnosis.best_epoch);
    const monitor = diagnosis.monitor;
    const on = monitor;
    const record = state.records.get(diagnosis.best_epoch);
    const y = record ? metricValue(record, on) : null;
    const valueText =
      on === monitor && diagnosis.best_value !== null && diagnosis.best_value !== undefined
        ? ` · ${formatMetric(toNumber(diagnosis.best_value), definition(monitor))}`
        : "";
    marks.lines.push({
      x,
      label: `best · epoch ${diagnosis.best_epoch}${valueText}`,
      className: "best",
      testid: "best-marker",
    });
    if (y !== null && Number.isFinite(y) && !(view.logY && y <= 0)) {
      marks.dots.push({ x, y, className: "best", title: `best ${monitor} at epoch ${diagnosis.best_epoch}` });
    }
  }
  if (model.projection) {
    const { evidence, curves, endX, def } = model.projection;
    const end = curves.epochs[curves.epochs.length - 1];
    const pct = toNumber(evidence.projected_improvement_pct);
    const best = toNumber(evidence.projected_best);
    const gain = pct === null ? "" : pct > 0 ? ` (${pct.toFixed(1)}% better)` : " (no new best)";
    const horizon = evidence.horizon === "assumed" ? "an assumed end" : "the planned end";
    marks.lines.push({ x: endX, className: "end", testid: "planned-end", title: `${horizon}: epoch ${end}` });
    if (best !== null) {
      marks.labels.push({
        x: endX,
        y: best,
        text: `projected best ${formatMetric(best, def)} by epoch ${end}${gain}`,
        className: `projection ${evidence.worth_continuing && !evidence.stall_backed ? "worth" : "not-worth"}`,
        testid: "projection-label",
      });
    }
  }
  for (const item of nonFinite.slice(0, 30))
    marks.lines.push({ x: item.x, label: item.label, className: "nonfinite", testid: "nonfinite-marker" });
  return marks;
}

function signatureOf(model) {
  return JSON.stringify([
    model.family && model.family.key,
    model.mode,
    view.logY,
    view.smoothing > 0,
    model.series.map((series) => series.label),
  ]);
}

function tableOf(model) {
  const base = [model.xs, ...model.columns];
  if (!model.extra.length) return base;
  // epochs, steps and the projection have x values of their own: join them (what one lacks is `undefined`,
  // which uPlot lines go across; a NaN gap stays null)
  return window.uPlot.join([base, ...model.extra.map((table) => [table.xs, ...table.columns])]);
}

function renderChart() {
  if (!ui.mainChart) return;
  renderToolbar();
  const model = buildModel();
  const chartEl = ui.mainChart;
  Object.assign(chartEl.dataset, {
    metric: model.family ? model.family.key : "",
    xAxis: model.mode,
    logY: String(view.logY),
    smoothing: String(view.smoothing),
    points: String(model.xs.length),
    projection: model.projection ? "shown" : "none",
    detail: state.detail && state.detail.records ? `${state.detail.from}-${state.detail.to}` : "",
    bestEpoch:
      state.diagnosis && state.diagnosis.best_epoch !== null && state.diagnosis.best_epoch !== undefined
        ? String(state.diagnosis.best_epoch)
        : "",
  });
  renderChartNote(model);
  if (!model.family || !model.xs.length) {
    destroyCharts();
    const active = state.operation && ACTIVE.has(state.operation.status);
    replace(
      chartEl,
      h(
        "div",
        { class: "chart-empty" },
        active ? h("div", { class: "spinner" }) : null,
        active
          ? "Waiting for the first epoch… curves appear here as epochs are reported."
          : "This run recorded no epochs.",
      ),
    );
    return;
  }
  const data = tableOf(model);
  const signature = signatureOf(model);
  if (mainChart && mainChart.signature === signature) {
    mainChart.model = model;
    // a person who zoomed in (drag across the chart; double-click zooms out) keeps the view as epochs arrive
    const plot = mainChart.chart.plot;
    if (mainChart.zoomed) {
      const { min, max } = plot.scales.x;
      plot.setData(data, false);
      plot.setScale("x", { min, max }); // redraws the new data in the same window
    } else plot.setData(data);
  } else {
    if (mainChart) mainChart.chart.destroy();
    replace(chartEl);
    const holder = { signature, model, chart: null, zoomed: false };
    const shownDef = definition(model.family.val || model.family.names[0]);
    const options = {
      height: MAIN_HEIGHT,
      series: [{ label: xLabel(model.mode), value: (u, value) => formatX(value, model.mode) }, ...model.series],
      bands: model.bands,
      scales: {
        x: { time: false, range: (u, min, max) => (min === max ? [min - 1, max + 1] : [min, max]) },
        y: yScale(view.logY),
      },
      axes: [
        { ...xAxis(model.mode), label: xLabel(model.mode), labelSize: 20 },
        {
          ...axisStyle(),
          ...valueTicks(view.logY),
          size: Y_AXIS_WIDTH,
          values: tickFormatter(shownDef, {
            log: view.logY,
            onTicks: (labels) => (chartEl.dataset.yTicks = labels.filter(Boolean).join("|")),
          }),
        },
      ],
      // the legend shows each curve at the hovered x itself, not at its nearest point (the projection starts
      // where the epochs end: it has no value at epoch 12)
      cursor: {
        sync: { key: `run-${operationId}` },
        drag: { x: true, y: false },
        dataIdx: (u, seriesIdx, hovered) => hovered,
      },
      legend: { live: true },
      plugins: [
        overlayPlugin(() => holder.model.marks && holder.model.marks()),
        legendAtLatest((u) => indexOfX(u.data[0], lastX(holder.model))),
      ],
      hooks: {
        draw: [() => onMainDrawn(holder.model)],
        setScale: [
          (u, key) => {
            if (key !== "x") return;
            const [min, max] = xRange(holder.model);
            holder.zoomed = u.scales.x.min > min + 1e-9 || u.scales.x.max < max - 1e-9;
            if (lrChart) lrChart.chart.plot.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
            onZoom(holder, u.scales.x.min, u.scales.x.max);
          },
        ],
      },
    };
    holder.chart = createChart(chartEl, options, data);
    chartEl.plot = holder.chart.plot; // for benchmarks and tests: the uPlot instance
    for (const index of model.hidden) {
      const row = holder.chart.plot.root.querySelectorAll(".u-legend .u-series")[index];
      if (row) row.style.display = "none";
    }
    mainChart = holder;
  }
  renderLrChart(model);
}

// ----------------------------------------------------------------------------------------- zoomed detail

/** The records to draw: the page's (a thinned sample of a long history), with a zoomed-in range replaced by the
 * same epochs read at full resolution. */
function displayRecords() {
  const all = sortedRecords();
  const detail = state.detail;
  if (!detail || !detail.records) return all;
  const before = all.filter((record) => record.epoch < detail.from);
  const after = all.filter((record) => record.epoch > detail.to);
  return [...before, ...detail.records, ...after];
}

/** After the x scale changed: zoomed into a thinned history, read the epochs of the window (from the drawn epoch
 * at or before its left edge to the one at or after its right edge) at full resolution; zoomed out, go back to the
 * whole thinned curve. */
function onZoom(holder, min, max) {
  if (!holder.zoomed) {
    clearTimeout(detailTimer);
    state.detailPending = null;
    if (state.detail) {
      state.detail = null;
      detailRequest += 1; // an answer still on its way is for a zoom that is gone
      setTimeout(renderChart); // not from inside uPlot's own hook
    }
    return;
  }
  if (!state.thinned) return; // the page holds every epoch already
  if (covers(state.detail, min, max) || covers(state.detailPending, min, max)) return;
  const range = epochRangeOf(holder.model, min, max);
  if (!range) return;
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => loadDetail(range, min, max), 150); // a drag ends in one zoom; wheel zooms settle
}

/** Whether `detail` (a window read, or being read) serves the window min..max: it holds the window and was read
 * whole, or it is this very window (read as finely as the server thins for a chart). */
function covers(detail, min, max) {
  if (!detail) return false;
  const eps = 1e-9 * Math.max(1, Math.abs(max));
  const inside = min >= detail.min - eps && max <= detail.max + eps;
  const same = inside && min <= detail.min + eps && max >= detail.max - eps;
  return inside && (!detail.thinned || same);
}

/** The epochs from the drawn one at or before `min` to the drawn one at or after `max`: every stored epoch of the
 * window lies between them, whatever the thinning left out. */
function epochRangeOf(model, min, max) {
  const { xs, records } = model;
  if (!xs.length) return null;
  let lo = 0;
  let hi = xs.length - 1;
  for (let i = 0; i < xs.length; i++) if (xs[i] <= min) lo = i;
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i] >= max) hi = i;
  let from = records[lo].epoch;
  let to = records[hi].epoch;
  if (from > to) [from, to] = [to, from];
  return { from, to };
}

async function loadDetail(range, min, max) {
  const request = ++detailRequest;
  state.detailPending = { ...range, min, max, thinned: false };
  try {
    const answer = await api(`${path}/metrics`, {
      params: { from_epoch: range.from, to_epoch: range.to, points: POINTS },
    });
    if (request !== detailRequest || !answer) return; // zoomed elsewhere, or out, meanwhile
    const metrics = answer.metrics;
    state.detailPending = null;
    state.detail = {
      ...range,
      min,
      max,
      records: (metrics.epochs || []).slice().sort((a, b) => a.epoch - b.epoch),
      thinned: Boolean(metrics.thinned),
    };
    renderChart();
  } catch (error) {
    if (request !== detailRequest) return;
    state.detailPending = null; // the next zoom tries again
    if (error instanceof ApiError && error.status === 404) markDeleted();
  }
}

function onMainDrawn(model) {
  if (!model.records.length) return;
  const epoch = Math.max(...model.records.slice(-50).map((record) => record.epoch));
  document.body.dataset.lastEpoch = String(epoch);
  if (!state.firstDrawn) {
    state.firstDrawn = true;
    performance.mark("trainops:first-chart");
    document.body.dataset.ready = "1";
  } else if (epoch > state.lastDrawnEpoch) {
    // a newer epoch on the chart, whichever read brought it first (the stream, or the diagnosis refresh)
    performance.mark("trainops:epoch-drawn", { detail: { epoch } });
  }
  state.lastDrawnEpoch = Math.max(state.lastDrawnEpoch, epoch);
  describeChart(model);
}

/** The chart in words, for a screen reader: what it draws and where each curve is now. */
function describeChart(model) {
  const last = model.records[model.records.length - 1];
  const now = model.family.names.map((name) => `${name} ${formatMetric(metricValue(last, name), definition(name))}`);
  ui.mainChart.setAttribute(
    "aria-label",
    `${model.family.names.join(" and ")} by ${xLabel(model.mode)}, ${model.records.length} epochs; at epoch ${last.epoch}: ${now.join(", ")}`,
  );
}

function renderChartNote(model) {
  const notes = [];
  if (state.thinned && state.epochsStored > state.records.size) {
    notes.push(
      `Showing ${state.records.size.toLocaleString("en-US")} of ${state.epochsStored.toLocaleString("en-US")} epochs, thinned for display (every metric's extremes and the best epoch kept).`,
    );
  }
  const detail = state.detail;
  if (detail && detail.records && mainChart && mainChart.zoomed) {
    notes.push(
      `Zoomed in: epochs ${detail.from.toLocaleString("en-US")}–${detail.to.toLocaleString("en-US")} drawn ${detail.thinned ? "from a finer sample" : "in full"}, read again from the server; double-click the chart to zoom out.`,
    );
  }
  if (view.logY && model.family) notes.push("Log scale: values at or below zero are left out; below 1e-15 or above 1e15 a curve runs off the edge.");
  if (model.projection) {
    const ev = model.projection.evidence;
    notes.push(
      `Projection: the recent trend over epochs ${ev.from_epoch}–${ev.to_epoch} extended over the ${ev.epochs_left} epoch(s) left, slowing as it has been; the band runs from the best a noisy metric is expected to reach to one noise σ on the worse side.`,
    );
  }
  replace(
    ui.chartNote,
    notes.map((note) => h("p", {}, note)),
  );
}

function destroyCharts() {
  if (mainChart) mainChart.chart.destroy();
  if (lrChart) lrChart.chart.destroy();
  mainChart = null;
  lrChart = null;
  if (ui.lrBlock) ui.lrBlock.hidden = true;
}

function renderLrChart(model) {
  if (!state.names.includes("learning_rate")) {
    if (lrChart) lrChart.chart.destroy();
    lrChart = null;
    ui.lrBlock.hidden = true;
    return;
  }
  ui.lrBlock.hidden = false;
  const values = model.records.map((record) => {
    const value = metricValue(record, "learning_rate");
    return value === null ? undefined : Number.isFinite(value) ? value : null;
  });
  const finite = values.filter((value) => typeof value === "number" && value > 0);
  const log =
    finite.length > 1 &&
    Math.max(...finite) / Math.min(...finite) > 20 &&
    values.every((value) => value === undefined || value === null || value > 0);
  const data = [model.xs, values];
  const signature = JSON.stringify([model.mode, log]);
  if (lrChart && lrChart.signature === signature) {
    lrChart.model = model;
    lrChart.chart.plot.setData(data);
    return;
  }
  if (lrChart) lrChart.chart.destroy();
  replace(ui.lrChart);
  const def = definition("learning_rate");
  const options = {
    height: LR_HEIGHT,
    series: [
      { label: xLabel(model.mode), value: (u, value) => formatX(value, model.mode) },
      { label: "learning_rate", stroke: "#7c3aed", width: 1.5, points: { show: false }, value: legendValue(def) },
    ],
    // the main chart's x range (with the projection, and any zoom), so that the two line up
    scales: {
      x: {
        time: false,
        range: () =>
          mainChart ? [mainChart.chart.plot.scales.x.min, mainChart.chart.plot.scales.x.max] : xRange(holder.model),
      },
      y: yScale(log),
    },
    axes: [xAxis(model.mode), { ...axisStyle(), ...valueTicks(log), size: Y_AXIS_WIDTH, values: scientificTicks }],
    cursor: { sync: { key: `run-${operationId}` }, drag: { x: true, y: false } },
    legend: { live: true },
    plugins: [legendAtLatest((u) => u.data[0].length - 1)],
  };
  const holder = { signature, model, chart: null };
  holder.chart = createChart(ui.lrChart, options, data);
  lrChart = holder;
}

/** Both charts show the same x range: the epochs drawn and, on the main chart, the projection to the planned end. */
function xRange(model) {
  const min = model.xMin;
  const max = model.xMax;
  return min === max ? [min - 1, max + 1] : [min, max];
}

function lastX(model) {
  return model.xs.length ? model.xs[model.xs.length - 1] : null;
}

function xAxis(mode) {
  return {
    ...axisStyle(),
    incrs: mode === "time" ? SECOND_INCRS : INTEGER_INCRS,
    values: (u, splits) => splits.map((value) => formatX(value, mode)),
  };
}

function xLabel(mode) {
  return { epoch: "epoch", step: "step", time: "wall time" }[mode];
}

function formatX(value, mode) {
  if (value === null || value === undefined) return "–";
  if (mode === "time") return formatElapsed(value);
  if (mode === "step") return Math.abs(value) >= 1e4 ? formatNumber(value) : String(Math.round(value));
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

// --------------------------------------------------------------------------------------------- diagnosis

function renderDiagnosis() {
  if (!ui.diagnosis) return;
  const diagnosis = state.diagnosis;
  if (!diagnosis || !diagnosis.recommendation || !diagnosis.epochs_analyzed) {
    ui.diagnosis.removeAttribute("data-action");
    replace(
      ui.diagnosis,
      h("h3", {}, "Diagnosis"),
      h(
        "p",
        { class: "muted", "data-testid": "recommendation-reason" },
        "The diagnosis appears with the first epochs: best epoch, trend, overfitting and what continuing is projected to gain.",
      ),
    );
    replace(ui.signals);
    ui.signals.hidden = true;
    return;
  }
  const recommendation = diagnosis.recommendation;
  const monitorDef = definition(diagnosis.monitor);
  const fmt = (value) => formatMetric(toNumber(value), monitorDef);
  ui.diagnosis.dataset.action = recommendation.action;
  const ended = TERMINAL.has(state.operation.status);
  const halted = stopped(); // failed or cancelled: no epoch will follow, whatever the last advice was
  ui.diagnosis.classList.toggle("ended", ended);
  const trend = diagnosis.trend || {};
  const arrow = { improving: "↘", worsening: "↗", flat: "→", unknown: "·" }[trend.direction] || "·";
  const trendGood = trend.direction === "improving" ? "good" : trend.direction === "worsening" ? "bad" : "muted";
  const trendArrow = diagnosis.mode === "max" ? { improving: "↗", worsening: "↘" }[trend.direction] || arrow : arrow;
  const projection = diagnosis.projection && diagnosis.projection.evidence;
  const facts = [
    [
      "Monitor",
      h(
        "span",
        {},
        h("code", {}, diagnosis.monitor),
        " ",
        h("span", { class: "muted" }, diagnosis.mode === "max" ? "↑ higher is better" : "↓ lower is better"),
      ),
    ],
    [
      "Best",
      diagnosis.best_epoch === null || diagnosis.best_epoch === undefined
        ? "–"
        : h("span", {}, h("strong", { class: "num" }, fmt(diagnosis.best_value)), ` at epoch ${diagnosis.best_epoch}`),
    ],
    ["Since best", `${diagnosis.epochs_since_improvement} epoch${diagnosis.epochs_since_improvement === 1 ? "" : "s"}`],
    [
      "Trend",
      h(
        "span",
        { class: "trend-line", "data-testid": "trend" },
        h("span", { class: `trend-arrow ${trendGood}` }, trendArrow),
        ` ${trend.direction || "unknown"}`,
        trend.percent_change !== null && trend.percent_change !== undefined
          ? ` ${trend.percent_change > 0 ? "+" : ""}${trend.percent_change.toFixed(1)}%`
          : "",
        trend.from_epoch !== null && trend.from_epoch !== undefined
          ? h("span", { class: "muted" }, ` over epochs ${trend.from_epoch}–${trend.to_epoch}`)
          : "",
        trend.direction === "flat" && trend.within_noise && trend.percent_change
          ? h(
              "span",
              { class: "muted", title: "The fitted line's change cannot be told from the epochs' scatter around it" },
              ", within its noise",
            )
          : "",
      ),
    ],
  ];
  if (projection && projection.epochs_left > 0 && !halted) {
    const pct = toNumber(projection.projected_improvement_pct);
    facts.push([
      h(
        "abbr",
        { title: "The recent trend carried on to the planned end, slowing as it has: what the stop or continue decision reads" },
        "Trend ahead",
      ),
      h(
        "span",
        {},
        h("strong", { class: "num" }, fmt(projection.projected_best)),
        ` by epoch ${Number(projection.to_epoch) + Number(projection.epochs_left)} `,
        projection.stall_backed && pct > 0
          ? h(
              "span",
              {
                class: "muted",
                "data-testid": "projected-gain",
                title: `val_loss has not improved for ${projection.val_loss_evaluations_since_best} evaluations either`,
              },
              `${pct.toFixed(1)}% better, overruled: val_loss has stalled too`,
            )
          : h(
              "span",
              { class: pct > 0 ? "good" : "bad", "data-testid": "projected-gain" },
              pct > 0 ? `${pct.toFixed(1)}% better` : "no new best",
            ),
      ),
    ]);
  }
  const forecast = diagnosis.forecast;
  if (forecast && (forecast.method === "ensemble" || forecast.method === "unmoved") && !halted) {
    // unmoved: the metric has not left its first value; no curve to fit, the band reaches as far as such runs went
    const band = [toNumber(forecast.best_value_q20), toNumber(forecast.best_value_q80)].sort((a, b) => a - b);
    // a forecast best at an epoch already behind the run: the best it expects is the one the run has
    const behind = forecast.method === "ensemble" && lastEpoch() !== null && Number(forecast.best_epoch) <= lastEpoch();
    facts.push([
      h(
        "abbr",
        { title: "Learning curves fitted to the whole run (power law, exponential, log-power): where its best is likely to land" },
        "Forecast",
      ),
      h(
        "span",
        { "data-testid": "forecast" },
        behind
          ? "no new best expected "
          : [
              h("strong", { class: "num" }, fmt(forecast.best_value)),
              forecast.method === "unmoved" ? ` unmoved since epoch ${forecast.best_epoch} ` : ` by epoch ${forecast.best_epoch} `,
            ],
        h("span", { class: "muted" }, `(20-80%: ${fmt(band[0])} to ${fmt(band[1])})`),
      ),
    ]);
  }
  const badges = [];
  if (diagnosis.is_overfitting) badges.push(h("span", { class: "badge flag-bad" }, "overfitting"));
  if (diagnosis.is_plateaued) badges.push(h("span", { class: "badge flag-warn" }, "plateau"));
  if (diagnosis.is_diverging) badges.push(h("span", { class: "badge flag-bad" }, "diverging"));
  replace(
    ui.diagnosis,
    h(
      "div",
      { class: "diagnosis-head" },
      h("h3", {}, halted ? "Diagnosis when it stopped" : ended ? "Final diagnosis" : "Recommendation"),
      halted
        ? h("span", { class: "badge action action-halted", "data-testid": "recommendation-action" }, stoppedText())
        : h(
            "span",
            { class: `badge action action-${recommendation.action}`, "data-testid": "recommendation-action" },
            ACTIONS[recommendation.action] || recommendation.action,
          ),
    ),
    halted
      ? h(
          "p",
          { class: "reason", "data-testid": "recommendation-reason" },
          `Its last recommendation, at epoch ${lastEpoch() ?? "–"}: ${recommendation.reason}`,
        )
      : h("p", { class: "reason", "data-testid": "recommendation-reason" }, recommendation.reason),
    recommendation.restore_epoch !== null && recommendation.restore_epoch !== undefined
      ? h("p", { class: "restore" }, `Keep the weights of epoch ${recommendation.restore_epoch}.`)
      : null,
    halted ? null : extendText(recommendation, fmt),
    badges.length ? h("div", { class: "flags" }, badges) : null,
    h(
      "dl",
      { class: "kv diagnosis-facts" },
      facts.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
    ),
  );
  renderSignals(diagnosis);
}

/** What a stopped run's diagnosis badge says instead of an action it can no longer take. */
function stoppedText() {
  const status = state.operation.status;
  return status === "failed" ? "failed: no more epochs" : status === "cancelled" ? "cancelled: no more epochs" : "cancelling: no more epochs";
}

/** A run still improving at its planned end: how many epochs more would pay, and the best they are projected to
 * reach. */
function extendText(recommendation, fmt) {
  const epochs = recommendation.extend_by;
  if (epochs === null || epochs === undefined) return null;
  const extended = recommendation.extend_forecast;
  return h(
    "p",
    { class: "extend", "data-testid": "extend-by" },
    `Still improving: train ${epochs} more epoch${epochs === 1 ? "" : "s"} past the planned end`,
    extended ? ` (projected best ${fmt(extended.best_value)})` : "",
    ".",
  );
}

function renderSignals(diagnosis) {
  const signals = [...(diagnosis.signals || [])];
  if (diagnosis.projection && !signals.some((signal) => signal.rule === "projected_improvement"))
    signals.push(diagnosis.projection);
  ui.signals.hidden = !signals.length;
  const firstWarning =
    signals.find((signal) => signal.severity !== "info") || (signals.length === 1 ? signals[0] : null);
  replace(
    ui.signals,
    h("h3", {}, "Evidence"),
    signals.map((signal) =>
      h(
        "details",
        {
          class: `signal severity-${signal.severity}`,
          "data-rule": signal.rule,
          "data-testid": "signal",
          open: signal === firstWarning,
        },
        h(
          "summary",
          {},
          h("span", { class: `severity-dot ${signal.severity}`, title: signal.severity }),
          h("span", { class: "rule" }, RULES[signal.rule] || signal.rule),
          h("code", { class: "rule-id" }, signal.rule),
        ),
        h("p", { class: "signal-message" }, signal.message),
        kvList(signal.evidence, "evidence"),
        Object.keys(signal.parameters || {}).length
          ? h("div", { class: "params" }, h("span", { class: "muted" }, "parameters "), kvInline(signal.parameters))
          : null,
      ),
    ),
  );
}

function kvList(object, className) {
  const entries = Object.entries(object || {});
  if (!entries.length) return null;
  return h(
    "dl",
    { class: `kv small ${className}` },
    entries.flatMap(([key, value]) => [h("dt", {}, key), h("dd", { class: "num-left" }, showValue(value))]),
  );
}

function kvInline(object) {
  return Object.entries(object || {}).map(([key, value]) =>
    h("span", { class: "param" }, h("span", { class: "muted" }, `${key}=`), showValue(value)),
  );
}

function showValue(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

// ------------------------------------------------------------------------------------------------ details

function renderDetails() {
  if (!ui.details) return;
  const op = state.operation;
  const meta = op.metadata || {};
  const rows = [
    ["Type", op.operation_type],
    ["Executor", meta.executor],
    ["Worker", meta.worker],
    ["Device", meta.device],
    ["Created", op.created_at ? formatTime(op.created_at) : null],
    ["Started", op.started_at ? formatTime(op.started_at) : null],
    ["Ended", op.completed_at ? formatTime(op.completed_at) : null],
    ["Heartbeat", op.last_heartbeat ? formatTime(op.last_heartbeat) : null],
  ];
  if (op.cancel_request || op.cancel_reason) {
    const request = op.cancel_request || {};
    const said = `${request.requested_by ? `by ${request.requested_by}: ` : ""}${op.cancel_reason || request.reason || ""}`;
    // cut in this narrow card; the result panel says it whole once the run has stopped
    rows.push(["Cancel", said.length > CARD_TEXT_CHARS ? `${said.slice(0, CARD_TEXT_CHARS)}…` : said]);
  }
  const extra = Object.entries(meta).filter(
    ([key, value]) =>
      ![
        "symbol",
        "timeframe",
        "strategy",
        "parameters",
        "executor",
        "worker",
        "device",
        "task",
        "name",
        "model_name",
      ].includes(key) &&
      value !== null &&
      typeof value !== "object",
  );
  for (const [key, value] of extra.slice(0, 12)) rows.push([key, String(value)]);
  const parameters = meta.parameters || {};
  const flat = flatten(parameters);
  replace(
    ui.details,
    h("h3", {}, "Run"),
    h(
      "dl",
      { class: "kv small" },
      rows
        .filter(([, value]) => value !== null && value !== undefined && value !== "")
        .flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
    ),
    flat.length
      ? h(
          "details",
          { class: "parameters" },
          h("summary", {}, `Parameters (${flat.length})`),
          h(
            "dl",
            { class: "kv small mono-values" },
            flat.slice(0, 400).flatMap(([key, value]) => [h("dt", { title: key }, key), h("dd", {}, value)]),
          ),
        )
      : null,
  );
}

function flatten(object, prefix = "", out = []) {
  for (const [key, value] of Object.entries(object || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, name, out);
    else out.push([name, Array.isArray(value) ? JSON.stringify(value) : value === null ? "null" : String(value)]);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------- cancel

function buildCancelDialog() {
  ui.cancelReason = h("textarea", {
    "data-testid": "cancel-reason",
    rows: "3",
    maxlength: "2000",
    required: true,
    placeholder: "e.g. val_loss has risen for 10 epochs: overfitting",
  });
  ui.cancelError = h("p", { class: "dialog-error", role: "alert", hidden: true });
  ui.cancelConfirm = h("button", { type: "submit", class: "danger", "data-testid": "cancel-confirm" }, "Cancel run");
  const form = h(
    "form",
    { method: "dialog", onsubmit: submitCancel },
    h("h2", {}, "Cancel this run?"),
    h(
      "p",
      { class: "muted" },
      "The run stops at its next check and ends cancelled. The reason is kept with the run, for whoever reads it later.",
    ),
    h("label", { class: "field-label" }, "Reason", ui.cancelReason),
    ui.cancelError,
    h(
      "menu",
      {},
      (ui.cancelKeep = h("button", { type: "button", onclick: () => ui.cancelDialog.close() }, "Keep running")),
      ui.cancelConfirm,
    ),
  );
  ui.cancelDialog = h("dialog", { class: "cancel-dialog", "aria-label": "Cancel run" }, form);
  document.body.append(ui.cancelDialog);
}

function openCancel() {
  ui.cancelError.hidden = true;
  ui.cancelConfirm.disabled = false;
  ui.cancelKeep.textContent = "Keep running";
  ui.cancelDialog.showModal();
  ui.cancelReason.focus();
}

async function submitCancel(event) {
  event.preventDefault();
  const reason = ui.cancelReason.value.trim();
  if (!reason) {
    ui.cancelError.textContent = "Say why the run should stop: the reason is recorded with it.";
    ui.cancelError.hidden = false;
    return;
  }
  ui.cancelConfirm.disabled = true;
  try {
    const operation = await api(path, { method: "DELETE", body: { reason, requested_by: "dashboard" } });
    state.operation = { ...state.operation, ...operation };
    ui.cancelDialog.close();
    renderHeader();
    renderDetails();
    renderProgress();
    renderDiagnosis();
    renderChart();
  } catch (error) {
    ui.cancelError.hidden = false;
    ui.cancelConfirm.disabled = false;
    if (error instanceof ApiError && error.status === 409) {
      // the run ended meanwhile: say so in a line (the server's message also tells API users what to do next)
      ui.cancelError.textContent = "This run has already ended: there is nothing to cancel.";
      ui.cancelConfirm.disabled = true;
      api(path).then(
        (operation) => {
          state.operation = { ...state.operation, ...operation };
          renderHeader();
          renderProgress();
          if (TERMINAL.has(operation.status)) endCancelDialog();
        },
        () => {},
      );
      return;
    }
    ui.cancelError.textContent = error.message || String(error);
  }
}

/** The run ended while the cancel dialog was open (a status event, or a 409): the dialog says so, and only closes. */
function endCancelDialog() {
  if (!ui.cancelDialog || !ui.cancelDialog.open) return;
  ui.cancelError.textContent = `This run has already ended (${state.operation.status}): there is nothing to cancel.`;
  ui.cancelError.hidden = false;
  ui.cancelConfirm.disabled = true;
  ui.cancelKeep.textContent = "Close";
}

// ------------------------------------------------------------------------------------------------- result

function renderResult() {
  const op = state.operation;
  if (!TERMINAL.has(op.status)) return;
  const result = op.result && typeof op.result === "object" ? op.result : null;
  const sections = [];
  if (op.status === "failed") {
    sections.push(
      h(
        "div",
        { class: "result-error" },
        h("h3", {}, "Error"),
        h("pre", { class: "error-text", "data-testid": "run-error" }, op.error || "The run failed without saying why."),
      ),
    );
  }
  if (op.status === "cancelled" && (op.cancel_reason || (op.cancel_request && op.cancel_request.reason))) {
    const request = op.cancel_request || {};
    sections.push(
      h(
        "p",
        { class: "cancelled-note" },
        `Cancelled${request.requested_by ? ` by ${request.requested_by}` : ""}: `,
        h("strong", {}, op.cancel_reason || request.reason),
      ),
    );
  }
  const strategy = result && isObject(result.test_metrics) && isObject(result.training_metrics);
  if (strategy) sections.push(...strategySections(result));
  else if (result) {
    const scalars = Object.entries(result).filter(([, value]) => value === null || typeof value !== "object");
    const nested = Object.entries(result).filter(([, value]) => isObject(value));
    if (scalars.length)
      sections.push(
        h("div", { class: "result-block" }, h("h3", {}, "Result"), metricTiles(Object.fromEntries(scalars))),
      );
    for (const [key, value] of nested.slice(0, 8)) {
      const inner = Object.entries(value).filter(([, item]) => item === null || typeof item !== "object");
      if (inner.length)
        sections.push(h("div", { class: "result-block" }, h("h3", {}, key), metricTiles(Object.fromEntries(inner))));
    }
  }
  if (!sections.length)
    sections.push(
      h("p", { class: "muted" }, op.status === "completed" ? "The run stored no result summary." : "No result."),
    );
  replace(
    ui.result,
    h(
      "section",
      { class: "card result-panel", "data-status": op.status, "data-testid": "result-panel" },
      h("h2", {}, "Result"),
      sections,
    ),
  );
}

function strategySections(result) {
  const test = result.test_metrics;
  const training = result.training_metrics;
  const info = result.model_info || {};
  const sections = [];
  const headline = {};
  for (const key of ["test_accuracy", "baseline_accuracy", "f1_score", "precision", "recall", "test_loss"])
    if (key in test) headline[key] = test[key];
  const weighted = {};
  for (const key of ["precision_weighted", "recall_weighted", "f1_weighted", "support"])
    if (key in test) weighted[key] = test[key];
  sections.push(
    h(
      "div",
      { class: "result-block" },
      h("h3", {}, "Test metrics"),
      metricTiles(headline, { large: true }),
      metricTiles(weighted),
    ),
  );

  const classes = Object.keys(test.per_class || {});
  const matrix = Array.isArray(test.confusion_matrix) ? test.confusion_matrix : [];
  const row = [];
  if (matrix.length)
    row.push(h("div", { class: "result-block" }, h("h3", {}, "Confusion matrix"), confusionMatrix(matrix, classes)));
  if (classes.length)
    row.push(h("div", { class: "result-block" }, h("h3", {}, "Per class"), perClassTable(test.per_class)));
  if (row.length) sections.push(h("div", { class: "result-row" }, row));

  const model = [
    ["Version", result.model_version ? h("code", {}, result.model_version) : null],
    ["Architecture", info.architecture],
    [
      "Parameters",
      info.parameters_count !== undefined && info.parameters_count !== null
        ? Number(info.parameters_count).toLocaleString("en-US")
        : null,
    ],
    [
      "Size",
      info.model_size_mb !== undefined && info.model_size_mb !== null
        ? `${formatNumber(info.model_size_mb * 1024)} KiB`
        : null,
    ],
    ["Inputs", info.input_size],
    ["Device", info.device],
    ["Path", info.model_path ? h("code", { class: "path" }, info.model_path) : null],
  ];
  const run = [
    [
      "Best epoch",
      training.best_epoch !== null && training.best_epoch !== undefined
        ? `${training.best_epoch} (${training.monitor || "monitor"} ${formatNumber(toNumber(training.best_value))})`
        : null,
    ],
    [
      "Epochs",
      training.epochs_planned ? `${training.epochs_completed} / ${training.epochs_planned}` : training.epochs_completed,
    ],
    ["Stopped early", training.early_stopped ? training.stopped_reason || "yes" : "no"],
    ["Best weights", training.restored_best_weights ? "restored" : null],
    ["Diverged", training.diverged],
    [
      "Training time",
      training.training_time_minutes !== null && training.training_time_minutes !== undefined
        ? formatDuration(training.training_time_minutes * 60)
        : null,
    ],
    ["Throughput", training.samples_per_second ? `${formatNumber(training.samples_per_second)} samples/s` : null],
  ];
  const data = result.data || {};
  const rows = data.rows || {};
  const dataFacts = [
    ["Features", data.features],
    [
      "Rows",
      rows.train !== undefined
        ? `${fmtInt(rows.train)} train · ${fmtInt(rows.validation)} val · ${fmtInt(rows.test)} test` +
          (data.purged_rows ? ` · ${fmtInt(data.purged_rows)} purged` : "")
        : null,
    ],
    ["Span", data.start ? `${String(data.start).slice(0, 10)} → ${String(data.end || "").slice(0, 10)}` : null],
    [
      "Classes",
      Object.keys(data.class_balance || {}).length
        ? Object.entries(data.class_balance)
            .map(([name, share]) => `${name} ${formatMetric(share.fraction, { format: "percent" })}`)
            .join(" · ")
        : null,
    ],
  ];
  sections.push(
    h(
      "div",
      { class: "result-row three" },
      factBlock("Model", model, "model-version"),
      factBlock("Training", run),
      factBlock("Data", dataFacts),
    ),
  );
  return sections;
}

function factBlock(title, rows, testid) {
  const shown = rows.filter(([, value]) => value !== null && value !== undefined && value !== "");
  if (!shown.length) return null;
  return h(
    "div",
    { class: "result-block", "data-testid": testid || null },
    h("h3", {}, title),
    h(
      "dl",
      { class: "kv small" },
      shown.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
    ),
  );
}

function fmtInt(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function metricTiles(values, { large = false } = {}) {
  const entries = Object.entries(values);
  if (!entries.length) return null;
  return h(
    "div",
    { class: `tiles${large ? " large" : ""}` },
    entries.map(([name, value]) => {
      const def = resultDefinition(name);
      const number = toNumber(value);
      const text =
        typeof value === "number" || (typeof value === "string" && number !== null && /^(NaN|-?Infinity)$/.test(value))
          ? formatMetric(number, def)
          : showValue(value);
      return h(
        "div",
        { class: "tile", "data-metric": name, title: def && def.description ? def.description : name },
        h("div", { class: "tile-label" }, (def && def.label) || name.replace(/_/g, " ")),
        h("div", { class: "tile-value num", title: text }, text),
      );
    }),
  );
}

function resultDefinition(name) {
  const known = definition(name) || definition(`val_${name}`);
  if (known) return known;
  if (name === "support") return { format: "int", label: "test samples" };
  if (name === "baseline_accuracy")
    return {
      format: "percent",
      label: "baseline",
      description:
        "The test accuracy of always predicting the training split's most frequent class: what the model must beat",
    };
  if (/accuracy|precision|recall|f1|auc|iou|map/i.test(name) && !/loss/i.test(name))
    return { format: "percent", label: name.replace(/_/g, " ") };
  return null;
}

function confusionMatrix(matrix, classes) {
  const labels = matrix.map((_, i) => classes[i] || String(i));
  const rowsTotal = matrix.map((row) => row.reduce((sum, value) => sum + (Number(value) || 0), 0));
  const total = rowsTotal.reduce((sum, value) => sum + value, 0);
  const correct = matrix.reduce((sum, row, i) => sum + (Number(row[i]) || 0), 0);
  return h(
    "div",
    { class: "confusion-wrap" },
    h(
      "table",
      { class: "confusion", "data-testid": "confusion-matrix" },
      h("caption", {}, `rows: true class · columns: predicted · ${fmtInt(correct)} of ${fmtInt(total)} right`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { class: "corner" }, "true ╲ pred"),
          labels.map((label) => h("th", { scope: "col" }, label)),
          h("th", { class: "total" }, "n"),
        ),
      ),
      h(
        "tbody",
        {},
        matrix.map((row, i) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, labels[i]),
            row.map((value, j) => {
              const share = rowsTotal[i] ? value / rowsTotal[i] : 0;
              const cell = h(
                "td",
                {
                  class: `cell${i === j ? " diagonal" : ""}`,
                  title: `true ${labels[i]}, predicted ${labels[j]}: ${value} (${(share * 100).toFixed(1)}% of ${labels[i]})`,
                },
                h("span", { class: "count" }, fmtInt(value)),
                h("span", { class: "share" }, `${(share * 100).toFixed(0)}%`),
              );
              const hue = i === j ? "37, 99, 235" : "220, 38, 38";
              cell.style.background = `rgba(${hue}, ${(0.06 + share * 0.7).toFixed(3)})`;
              if (share > 0.55) cell.classList.add("strong");
              return cell;
            }),
            h("td", { class: "total num" }, fmtInt(rowsTotal[i])),
          ),
        ),
      ),
    ),
  );
}

function perClassTable(perClass) {
  const percent = { format: "percent" };
  return h(
    "table",
    { class: "data per-class" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "class"),
        ["precision", "recall", "f1", "support"].map((name) => h("th", { class: "num" }, name)),
      ),
    ),
    h(
      "tbody",
      {},
      Object.entries(perClass).map(([name, scores]) =>
        h(
          "tr",
          {},
          h("td", {}, name),
          h("td", { class: "num" }, formatMetric(toNumber(scores.precision), percent)),
          h("td", { class: "num" }, formatMetric(toNumber(scores.recall), percent)),
          h("td", { class: "num" }, formatMetric(toNumber(scores.f1), percent)),
          h("td", { class: "num" }, fmtInt(scores.support)),
        ),
      ),
    ),
  );
}

// --------------------------------------------------------------------------------------------- export

/** Every stored epoch (not the thinned display copy) as a CSV file: epoch, step, timestamp, then each metric. */
// ---------------------------------------------------------------------------------------------- artifacts

async function loadArtifacts() {
  let artifacts;
  try {
    artifacts = await api(`${path}/artifacts`);
  } catch {
    return;
  }
  if (!artifacts || !artifacts.length) {
    replace(ui.artifacts);
    return;
  }
  replace(
    ui.artifacts,
    h(
      "section",
      { class: "card artifacts-card", "data-testid": "artifacts" },
      h("h2", {}, "Artifacts"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "path"),
              h("th", { class: "num" }, "size"),
              h("th", {}, "sha256"),
              h("th", {}, "stored"),
            ),
          ),
          h(
            "tbody",
            {},
            artifacts.map((artifact) => {
              const href = `${API}${path}/artifacts/${artifact.path.split("/").map(encodeURIComponent).join("/")}`;
              const name = artifact.path.split("/").pop();
              const link = h(
                "a",
                { href, download: name, onclick: (event) => downloadWithToken(event, href, name) },
                artifact.path,
              );
              return h(
                "tr",
                {},
                h("td", {}, link),
                h("td", { class: "num" }, formatBytes(artifact.size)),
                h("td", {}, h("code", { title: artifact.sha256 }, artifact.sha256.slice(0, 12))),
                h("td", { title: artifact.created_at }, formatTime(artifact.created_at)),
              );
            }),
          ),
        ),
      ),
    ),
  );
}

/** A plain link cannot send the bearer token: with one set, fetch the file with it and save the bytes. */
async function downloadWithToken(event, href, name) {
  const token = getToken();
  if (!token) {
    checkExists(); // the browser downloads it; a run deleted meanwhile is then said to be gone on the page too
    return;
  }
  event.preventDefault();
  try {
    const response = await fetch(href, { headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 404) {
      markDeleted();
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const anchor = h("a", { href: url, download: name });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    showBanner(`The download of ${name} failed: ${error.message}`);
  }
}

function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

// -------------------------------------------------------------------------------------------------- states

function renderNotFound() {
  document.title = "No such run · trainops";
  replace(
    main(),
    h(
      "section",
      { class: "card empty not-found", "data-testid": "not-found" },
      h("h1", {}, "No such run"),
      h(
        "p",
        {},
        "This server has no run with the id ",
        h("code", {}, operationId),
        ". It may have been deleted, or the address is mistyped.",
      ),
      h("p", {}, h("a", { href: "/" }, "← All runs")),
    ),
  );
  document.body.dataset.ready = "1";
}

function renderLoadError(error) {
  const needsToken = error instanceof ApiError && error.status === 401;
  replace(
    main(),
    h(
      "section",
      { class: "card empty", "data-testid": "load-error" },
      h("h1", {}, needsToken ? "This server asks for an API token" : "The run could not be loaded"),
      h(
        "p",
        {},
        needsToken
          ? "Enter it with the API token button at the top right; the page reloads with it."
          : error.message || String(error),
      ),
    ),
  );
  document.body.dataset.ready = "1";
}

function copyText(text, button) {
  if (!navigator.clipboard) return;
  navigator.clipboard.writeText(text).then(
    () => {
      button.textContent = "copied";
      setTimeout(() => (button.textContent = "copy"), 1200);
    },
    () => {},
  );
}
