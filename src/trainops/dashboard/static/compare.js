// The compare page (/compare?ids=a,b,c): several runs' curves of one metric overlaid on one chart, their
// parameters side by side with the differences marked, and each run's diagnosis in one line. The selection lives
// in the address, so a reload or a shared link shows the same runs.

import {
  ACTIVE,
  ApiError,
  COLORS,
  api,
  formatDuration,
  formatMetric,
  formatTime,
  h,
  main,
  metricDefinitions,
  metricLabel,
  replace,
  runLink,
  runTitle,
  secondsBetween,
  setConnection,
  statusBadge,
} from "./common.js";
import {
  INTEGER_INCRS,
  SECOND_INCRS,
  axisSize,
  axisStyle,
  createChart,
  emaSmooth,
  fade,
  formatElapsed,
  indexOfX,
  metricFamilies,
  metricValue,
  reportedMetrics,
  tickFormatter,
  valueTicks,
  yScale,
} from "./chart.js";

const POINTS = 2000;
const CATALOG_LIMIT = 200;
const CHART_HEIGHT = 380;
const OPTIONS_KEY = "trainops.compare.options";

// Live updates poll each active run's metrics with `since_epoch` rather than following its events stream: a
// comparison may hold many running runs, and each open stream holds one of the browser's six HTTP/1.1
// connections to this server, so a handful of them would starve the page's other requests (and the other tabs'
// streams). Two small requests per active run every POLL_MS (answered from the ETag when nothing changed) are
// plenty for comparing runs; the run page is where one run is watched epoch by epoch.
const POLL_MS = 2000;

// ------------------------------------------------------------------------------------------------- state

/**
 * One run of the comparison:
 *   { id, state: "loading" | "ready" | "missing" | "error", error, operation, diagnosis, epochs, definitions }
 * `diagnosis` is the metrics block without its epochs; `epochs` oldest first.
 */
const runs = new Map();
const colorSlots = new Map(); // id -> palette index, kept while the page lives: removing a run recolors no other
let ids = [];
let catalog = null; // the picker's runs, newest first; null while loading
let catalogError = null;
let definitions = { byName: {}, primary: {} };
let chosenMetric = null; // the person's choice; the primary metric while null
let onlyDifferences = false;
const options = loadOptions();

const view = {}; // the page's long-lived elements, made once by layout()
let chart = null; // { plot: uPlot, key, drawn: [run ids] }
let pollTimer = null;

/** The options saved in this browser, each checked (storage is anyone's to edit): a bad one is its default. */
function loadOptions() {
  const defaults = { train: true, log: false, smoothing: 0.6, x: "epoch" };
  try {
    const saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || "{}") || {};
    const smoothing = Number(saved.smoothing);
    return {
      train: typeof saved.train === "boolean" ? saved.train : defaults.train,
      log: typeof saved.log === "boolean" ? saved.log : defaults.log,
      smoothing: Number.isFinite(smoothing) ? Math.min(Math.max(smoothing, 0), 0.99) : defaults.smoothing,
      x: ["epoch", "time"].includes(saved.x) ? saved.x : defaults.x,
    };
  } catch {
    return defaults;
  }
}

function saveOptions() {
  localStorage.setItem(OPTIONS_KEY, JSON.stringify(options));
}

/** The ids in the address: `?ids=a,b` (repeated `ids` and spaces tolerated), each once, in order. */
function idsFromAddress() {
  const search = new URLSearchParams(location.search);
  const found = [];
  for (const value of search.getAll("ids")) {
    for (const part of value.split(",")) {
      const id = part.trim();
      if (id && !found.includes(id)) found.push(id);
    }
  }
  return found;
}

function writeAddress() {
  const search = new URLSearchParams(location.search);
  search.delete("ids");
  const rest = search.toString();
  const list = ids.map(encodeURIComponent).join(",");
  const query = [list ? `ids=${list}` : "", rest].filter(Boolean).join("&");
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}`);
}

function colorOf(id) {
  if (!colorSlots.has(id)) {
    const taken = new Set(ids.filter((other) => colorSlots.has(other)).map((other) => colorSlots.get(other)));
    let slot = 0;
    while (taken.has(slot) && slot < COLORS.length) slot += 1;
    colorSlots.set(id, slot % COLORS.length);
  }
  return COLORS[colorSlots.get(id)];
}

function readyRuns() {
  return ids.map((id) => runs.get(id)).filter((run) => run && run.state === "ready");
}

// ------------------------------------------------------------------------------------------------ loading

async function loadRun(id) {
  const run = { id, state: "loading", error: null, operation: null, diagnosis: null, epochs: [], definitions: {} };
  runs.set(id, run);
  try {
    const path = `/operations/${encodeURIComponent(id)}`;
    const [operation, metrics] = await Promise.all([
      api(path),
      api(`${path}/metrics`, { params: { points: POINTS } }),
    ]);
    const { epochs, definitions: own, ...diagnosis } = metrics.metrics;
    Object.assign(run, { state: "ready", operation, diagnosis, epochs: epochs || [], definitions: own || {} });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) run.state = "missing";
    else Object.assign(run, { state: "error", error: error.message || String(error) });
  }
  return run;
}

/** New epochs and the current diagnosis of an active run; answers whether anything changed. */
async function refreshRun(run) {
  const path = `/operations/${encodeURIComponent(run.id)}`;
  const last = run.epochs.length ? run.epochs[run.epochs.length - 1].epoch : -1;
  const [operation, metrics] = await Promise.all([
    api(path),
    api(`${path}/metrics`, { params: { since_epoch: last } }),
  ]);
  if (runs.get(run.id) !== run) return false; // removed meanwhile
  let changed = operation.updated_at !== run.operation.updated_at || operation.status !== run.operation.status;
  run.operation = operation;
  if (metrics) {
    const { epochs, definitions: own, ...diagnosis } = metrics.metrics;
    for (const record of epochs || []) {
      const at = run.epochs.findIndex((stored) => stored.epoch === record.epoch);
      if (at >= 0) run.epochs[at] = record;
      else run.epochs.push(record);
      changed = true;
    }
    run.epochs.sort((a, b) => a.epoch - b.epoch);
    run.diagnosis = diagnosis;
    run.definitions = { ...run.definitions, ...(own || {}) };
  }
  return changed;
}

async function loadCatalog() {
  try {
    const page = await api("/operations", { params: { limit: CATALOG_LIMIT } });
    catalog = page.items || [];
    catalogError = null;
  } catch (error) {
    catalog = [];
    catalogError = error.message || String(error);
  }
  renderPicker();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, POLL_MS);
}

async function poll() {
  const active = readyRuns().filter((run) => ACTIVE.has(run.operation.status));
  if (!active.length) {
    setConnection("");
    schedulePoll();
    return;
  }
  try {
    const changes = await Promise.all(active.map(refreshRun));
    setConnection("live");
    if (changes.some(Boolean)) renderData();
  } catch (error) {
    setConnection("error");
    view.connectionError = error.message;
  }
  schedulePoll();
}

// ---------------------------------------------------------------------------------------------- metrics

/** A record's value of a metric: a finite number, else null (a gap: not reported, NaN or infinite). */
function valueOf(record, name) {
  const value = metricValue(record, name);
  return Number.isFinite(value) ? value : null;
}

/** The metrics any selected run reported, the primary (the diagnosis's monitor, most runs' choice) first. */
function metricNames() {
  const seen = new Set();
  const monitors = new Map();
  for (const run of readyRuns()) {
    const monitor = run.diagnosis && run.diagnosis.monitor;
    if (monitor) monitors.set(monitor, (monitors.get(monitor) || 0) + 1);
    for (const name of reportedMetrics(run.epochs)) seen.add(name);
  }
  let primary = null;
  for (const [monitor, count] of monitors) if (primary === null || count > monitors.get(primary)) primary = monitor;
  const rank = (name) => (name.startsWith("val_") ? 0 : name === "learning_rate" || name === "duration" ? 2 : 1);
  const rest = [...seen].filter((name) => name !== primary).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return { primary, names: primary && seen.has(primary) ? [primary, ...rest] : rest };
}

function definitionOf(name) {
  for (const run of readyRuns()) if (run.definitions[name]) return run.definitions[name];
  return definitions.byName[name] || null;
}

/** The training curve that goes with a validation metric (val_loss -> train_loss), paired as the run page does. */
function trainCounterpart(name, reported) {
  const family = metricFamilies(reported, name).find((candidate) => candidate.val === name);
  return family ? family.train : null;
}

/** A run's points for the chart: x (epoch, or seconds since its first epoch), epochs, and the values. */
function pointsOf(run, metric, train) {
  const firstTime = run.epochs.length ? Date.parse(run.epochs[0].timestamp) : NaN;
  const xs = [];
  const epochs = [];
  const values = [];
  const trainValues = [];
  for (const record of run.epochs) {
    const x = options.x === "time" ? (Date.parse(record.timestamp) - firstTime) / 1000 : record.epoch;
    if (!Number.isFinite(x)) continue;
    const value = valueOf(record, metric);
    const trainValue = train ? valueOf(record, train) : null;
    if (value === null && trainValue === null) continue;
    if (xs.length && x <= xs[xs.length - 1]) continue; // uPlot needs x strictly increasing
    xs.push(x);
    epochs.push(record.epoch);
    values.push(value);
    trainValues.push(trainValue);
  }
  return { xs, epochs, values, trainValues };
}

// ------------------------------------------------------------------------------------------------- chart

const AXIS_FONTS = { font: "11px system-ui, sans-serif", labelFont: "600 12px system-ui, sans-serif" };

/** Everything the chart draws, from the ready runs and the options. */
function chartModel() {
  const { primary, names } = metricNames();
  const metric = chosenMetric && names.includes(chosenMetric) ? chosenMetric : primary || names[0] || null;
  if (!metric) return { metric: null, names, primary };
  const definition = definitionOf(metric);
  const counterpart = trainCounterpart(metric, names);
  const train = options.train ? counterpart : null;
  const lines = [];
  for (const run of readyRuns()) {
    const points = pointsOf(run, metric, train);
    if (!points.values.some((value) => value !== null) && !points.trainValues.some((value) => value !== null)) {
      continue;
    }
    lines.push({ run, color: colorOf(run.id), ...points });
  }
  return { metric, names, primary, definition, counterpart, train, lines };
}

/** uPlot's aligned data and series for the model: per run, validation (raw faint + smoothed) and train dashed. */
function chartData(model) {
  const tables = [];
  const series = [{}];
  // a log scale has no place for 0 or below: those points become gaps
  const positive = (values) => (options.log ? values.map((value) => (value > 0 ? value : null)) : values);
  const smoothing = options.smoothing;
  for (const line of model.lines) {
    const title = runTitle(line.run.operation);
    const table = [line.xs];
    const add = (values, label, { dash, faint, width }) => {
      table.push(positive(values));
      series.push({
        label,
        stroke: faint ? fade(line.color, 0.25) : line.color,
        width: width,
        dash,
        spanGaps: false,
        class: faint ? "faint" : undefined, // compare.css hides their hover dots
        // dots only where a line cannot show: a run of one or two epochs
        points: { show: !faint && line.xs.length <= 2, size: 6, fill: line.color },
      });
    };
    const parts = [[line.values, model.metric, undefined]];
    if (model.train) parts.push([line.trainValues, model.train, [6, 4]]);
    for (const [values, name, dash] of parts) {
      if (smoothing > 0) {
        add(values, `${title} · ${name} (raw)`, { dash, faint: true, width: 1 });
        add(emaSmooth(values, smoothing), `${title} · ${name}`, { dash, width: dash ? 1.5 : 2 });
      } else {
        add(values, `${title} · ${name}`, { dash, width: dash ? 1.25 : 1.75 });
      }
    }
    tables.push(table);
  }
  return { data: window.uPlot.join(tables), series };
}

/** Each run's best epoch (the diagnosis's) as a ringed dot on its curve. */
function drawBestEpochs(u) {
  const model = chart && chart.model;
  if (!model) return;
  const ratio = window.uPlot.pxRatio || 1;
  const { ctx } = u;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  ctx.clip();
  for (const line of model.lines) {
    const best = line.run.diagnosis && line.run.diagnosis.best_epoch;
    if (best === null || best === undefined) continue;
    const at = line.epochs.indexOf(best);
    if (at < 0) continue;
    const y = line.values[at]; // the recorded value, not the smoothed curve's
    if (y === null || (options.log && y <= 0)) continue;
    const cx = u.valToPos(line.xs[at], "x", true);
    const cy = u.valToPos(y, "y", true);
    // a dot of the run's colour in a white ring, over every line
    ctx.beginPath();
    ctx.arc(cx, cy, 7 * ratio, 0, 2 * Math.PI);
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.lineWidth = 1 * ratio;
    ctx.strokeStyle = line.color;
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(cx, cy, 4.5 * ratio, 0, 2 * Math.PI);
    ctx.fillStyle = line.color;
    ctx.fill();
  }
  ctx.restore();
}

function renderChart() {
  const model = chartModel();
  renderMetricSelect(model);
  const box = view.chart;
  box.dataset.metric = model.metric || "";
  box.dataset.x = options.x;
  view.trainToggle.disabled = !model.counterpart;
  view.trainToggle.parentElement.title = model.counterpart
    ? `also draw ${model.counterpart}, dashed`
    : "this metric has no training counterpart";
  const lines = model.lines || [];
  if (!lines.length || typeof window.uPlot === "undefined") {
    destroyChart();
    const loading = ids.some((id) => runs.get(id) && runs.get(id).state === "loading");
    let message = "No curves to draw: none of these runs has reported an epoch yet.";
    if (loading) message = "Loading curves…";
    else if (typeof window.uPlot === "undefined") message = "The chart library is missing from this install.";
    else if (!readyRuns().length) message = "No run to draw.";
    replace(box, h("div", { class: `chart-empty${loading ? " loading" : ""}` }, message));
    box.dataset.seriesCount = "0";
    renderLegend(model, null);
    if (ids.length && !loading) markReady(); // with no runs picked, the page is ready once the picker is filled
    return;
  }
  const { data, series } = chartData(model);
  // the same lines in the same styles only need new data; anything else is a new chart
  const shape = series.map((entry) => [entry.label, entry.stroke, entry.dash]);
  const key = JSON.stringify([shape, options.log, options.x, model.metric]);
  if (chart && chart.key === key) {
    chart.model = model;
    chart.plot.setData(data);
  } else {
    destroyChart();
    replace(box);
    const definition = model.definition;
    const created = createChart(
      box,
      {
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { y: false, drag: { x: true, y: false, setScale: true }, points: { size: 7 } },
        scales: { x: { time: false }, y: yScale(options.log) },
        axes: [
          {
            ...axisStyle(AXIS_FONTS),
            label: options.x === "time" ? "Time since the run's first epoch" : "Epoch",
            labelSize: 20,
            size: 36,
            incrs: options.x === "time" ? SECOND_INCRS : INTEGER_INCRS,
            values: (u, splits) => splits.map((value) => (options.x === "time" ? formatElapsed(value) : String(value))),
          },
          {
            ...axisStyle(AXIS_FONTS),
            ...valueTicks(options.log),
            label: metricLabel(model.metric, definition),
            labelSize: 22,
            values: tickFormatter(definition, { log: options.log }),
            size: axisSize,
          },
        ],
        series,
        hooks: {
          draw: [drawBestEpochs],
          setCursor: [(u) => renderLegend(chart && chart.model, u)],
        },
      },
      data,
    );
    chart = { ...created, key, model };
  }
  box.dataset.seriesCount = String(lines.length);
  renderLegend(model, chart.plot);
  markReady();
}

function destroyChart() {
  if (chart) chart.destroy();
  chart = null;
}

function markReady() {
  document.body.dataset.ready = "1";
}

/** The legend under the chart: per run, its value where the cursor is (else the last), and its best epoch. */
function renderLegend(model, plot) {
  if (!model || !model.lines) {
    replace(view.legend);
    return;
  }
  const index = plot ? plot.cursor.idx : null;
  const cursorX = index !== null && index !== undefined && plot ? plot.data[0][index] : null;
  const definition = model.definition;
  const trainDefinition = model.train ? definitionOf(model.train) : null;
  const heading =
    cursorX === null ? "last epoch" : options.x === "time" ? `at ${formatElapsed(cursorX)}` : `at epoch ${cursorX}`;
  const rows = model.lines.map((line) => {
    const at = cursorX === null ? line.xs.length - 1 : indexOfX(line.xs, cursorX) ?? -1;
    const value = at >= 0 ? line.values[at] : null;
    const trainValue = at >= 0 ? line.trainValues[at] : null;
    const diagnosis = line.run.diagnosis || {};
    let best = "";
    if (diagnosis.best_epoch !== null && diagnosis.best_epoch !== undefined) {
      best = `${formatMetric(diagnosis.best_value, definitionOf(diagnosis.monitor))} @ ${diagnosis.best_epoch}`;
      if (diagnosis.monitor !== model.primary) best += ` (${diagnosis.monitor})`;
    }
    return h(
      "div",
      {
        class: "legend-entry",
        dataset: { testid: "legend-entry", operationId: line.run.id, epochs: String(line.run.epochs.length) },
      },
      swatch(line.color),
      h("a", { class: "legend-title", href: `/runs/${encodeURIComponent(line.run.id)}` }, runTitle(line.run.operation)),
      h("span", { class: "legend-value num", title: model.metric }, formatMetric(value, definition)),
      h(
        "span",
        { class: "legend-train num", title: model.train },
        model.train && formatMetric(trainValue, trainDefinition),
      ),
      h("span", { class: "legend-best muted", title: diagnosis.monitor && `best ${diagnosis.monitor}` }, best),
    );
  });
  replace(
    view.legend,
    h(
      "div",
      { class: "legend-head muted" },
      h("span", {}, ""),
      h("span", {}, heading),
      h("span", { class: "num" }, model.metric),
      h("span", { class: "num" }, model.train ? h("span", { class: "dashed-key", title: "dashed" }, model.train) : ""),
      h("span", {}, model.primary ? `best ${model.primary} @ epoch` : "best @ epoch"),
    ),
    rows,
  );
}

function renderMetricSelect(model) {
  const select = view.metricSelect;
  const signature = JSON.stringify(model.names);
  if (select.dataset.signature !== signature) {
    select.dataset.signature = signature;
    replace(
      select,
      model.names.map((name) => {
        const definition = definitionOf(name);
        const label = metricLabel(name, definition);
        const text = `${label === name ? name : `${label} (${name})`}${name === model.primary ? " · primary" : ""}`;
        return h("option", { value: name }, text);
      }),
    );
  }
  select.disabled = !model.names.length;
  if (model.metric) select.value = model.metric;
}

// ------------------------------------------------------------------------------------------ side by side

/** A value as a person reads it: exact numbers, lists in brackets, nested objects as `key: value` lines. */
function formatValue(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(10)));
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(inline).join(", ")}]`;
  return Object.entries(value)
    .map(([key, item]) => `${key}: ${inline(item)}`)
    .join("\n");
}

function inline(value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    return `{${Object.entries(value).map(([key, item]) => `${key}: ${inline(item)}`).join(", ")}}`;
  }
  return formatValue(value);
}

/** The same JSON for equal values whatever their keys' order, so that differences are real ones. */
function canonical(value) {
  if (value === undefined || value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

const LEADING_FIELDS = ["strategy", "task", "model_name", "symbol", "timeframe"];
const TRAILING_FIELDS = ["executor", "device", "worker"];
const SKIPPED_FIELDS = new Set(["name", "parameters"]);
const CLAMP_CHARS = 240; // a value longer than this (or of more lines than CLAMP_LINES) is clamped to a few lines
const CLAMP_LINES = 4;

function action(run) {
  const recommendation = run.diagnosis && run.diagnosis.recommendation;
  return recommendation ? recommendation.action : null;
}

function actionBadge(name) {
  return name ? h("span", { class: `badge action-${name}` }, name.replaceAll("_", " ")) : "–";
}

/**
 * The table's sections and rows: { title, rows: [{ key, label, cells: [{ value (compared), content }] }] }.
 * A row only appears when some run has a value for it.
 */
function tableSections(shown) {
  const primary = metricNames().primary;
  const summary = [
    {
      key: "status",
      label: "status",
      cell: (run) => ({
        value: run.operation.status,
        content: statusBadge(run.operation.status, { cancelRequested: run.operation.cancel_requested }),
      }),
    },
    {
      key: "epochs",
      label: "epochs",
      cell: (run) => {
        const { epochs_completed: done, total_epochs: total } = run.operation;
        return { value: [done, total], content: total ? `${done} / ${total}` : String(done ?? "–"), numeric: true };
      },
    },
    {
      key: "duration",
      label: "duration",
      cell: (run) => {
        const text = formatDuration(secondsBetween(run.operation.started_at, run.operation.completed_at));
        return { value: text, content: text, numeric: true };
      },
    },
    {
      key: "best_value",
      label: primary ? `best ${primary}` : "best value",
      cell: (run) => {
        const diagnosis = run.diagnosis || {};
        if (diagnosis.best_value === null || diagnosis.best_value === undefined) return { value: null, content: "–" };
        const text = formatMetric(diagnosis.best_value, definitionOf(diagnosis.monitor));
        const content = diagnosis.monitor === primary ? text : `${text} (${diagnosis.monitor})`;
        return { value: [diagnosis.monitor, diagnosis.best_value], content, numeric: true };
      },
    },
    {
      key: "best_epoch",
      label: "best epoch",
      cell: (run) => {
        const epoch = run.diagnosis ? run.diagnosis.best_epoch : null;
        return { value: epoch, content: epoch === null || epoch === undefined ? "–" : String(epoch), numeric: true };
      },
    },
    {
      key: "recommendation",
      label: "recommendation",
      cell: (run) => ({ value: action(run), content: actionBadge(action(run)) }),
    },
  ];
  const fieldNames = new Set();
  const parameterNames = new Set();
  for (const run of shown) {
    const meta = run.operation.metadata || {};
    for (const key of Object.keys(meta)) if (!SKIPPED_FIELDS.has(key)) fieldNames.add(key);
    for (const key of Object.keys(meta.parameters || {})) parameterNames.add(key);
  }
  const placed = [...LEADING_FIELDS, ...TRAILING_FIELDS];
  const fields = [
    ...LEADING_FIELDS.filter((key) => fieldNames.has(key)),
    ...[...fieldNames].filter((key) => !placed.includes(key)).sort(),
    ...TRAILING_FIELDS.filter((key) => fieldNames.has(key)),
  ];
  const plain = (read) => (run) => {
    const value = read(run);
    return { value, content: formatValue(value), numeric: typeof value === "number" };
  };
  const sections = [
    { title: "Summary", rows: summary },
    {
      title: "Run",
      rows: [
        { key: "name", label: "name", cell: plain((run) => run.operation.name || (run.operation.metadata || {}).name) },
        {
          key: "tags",
          label: "tags",
          cell: (run) => {
            const tags = run.operation.tags || [];
            // compared as a set: the same tags given in another order are no difference
            return { value: tags.length ? [...tags].sort() : null, content: tags.length ? tags.join(", ") : "–" };
          },
        },
        { key: "notes", label: "notes", cell: plain((run) => run.operation.notes) },
        { key: "operation_type", label: "type", cell: plain((run) => run.operation.operation_type) },
        ...fields.map((key) => ({ key, label: key, cell: plain((run) => (run.operation.metadata || {})[key]) })),
      ],
    },
    {
      title: "Parameters",
      rows: [...parameterNames].sort().map((key) => ({
        key: `parameters.${key}`,
        label: key,
        cell: plain((run) => ((run.operation.metadata || {}).parameters || {})[key]),
      })),
    },
  ];
  return sections.map((section) => ({
    title: section.title,
    rows: section.rows
      .map((row) => ({ ...row, cells: shown.map(row.cell) }))
      .filter((row) => row.cells.some((cell) => cell.value !== null && cell.value !== undefined)),
  }));
}

function renderTable() {
  const shown = readyRuns();
  if (!shown.length) {
    view.paramsCard.hidden = true;
    return;
  }
  view.paramsCard.hidden = false;
  const sections = tableSections(shown);
  const head = h(
    "tr",
    {},
    h("th", { class: "param-label" }, ""),
    shown.map((run) =>
      h(
        "th",
        { class: "run-head", dataset: { operationId: run.id } },
        h("div", { class: "run-head-title" }, swatch(colorOf(run.id)), runLink(run.id, runTitle(run.operation))),
        h("div", { class: "run-head-id mono muted" }, run.id),
      ),
    ),
  );
  const body = [];
  let differing = 0;
  let total = 0;
  for (const section of sections) {
    if (!section.rows.length) continue;
    const rows = section.rows.map((row) => {
      const differs = shown.length > 1 && new Set(row.cells.map((cell) => canonical(cell.value))).size > 1;
      total += 1;
      if (differs) differing += 1;
      return h(
        "tr",
        {
          class: `param-row${differs ? " differs" : ""}`,
          dataset: { testid: "param-row", param: row.key, differs: String(differs) },
        },
        h("th", { class: "param-label", scope: "row", title: row.key }, row.label),
        row.cells.map((cell) =>
          h("td", { class: `${cell.numeric ? "numeric " : ""}value` }, clampLong(cell.content)),
        ),
      );
    });
    const sectionDiffers = rows.filter((row) => row.dataset.differs === "true").length;
    body.push(
      h(
        "tr",
        { class: "param-section", dataset: { differing: String(sectionDiffers) } },
        h(
          "th",
          { colspan: String(shown.length + 1) },
          section.title,
          shown.length > 1
            ? h(
                "span",
                { class: "section-count" },
                sectionDiffers ? `${sectionDiffers} of ${rows.length} differ` : "all equal",
              )
            : null,
        ),
      ),
      ...rows,
    );
  }
  view.paramsTable.classList.toggle("only-differences", onlyDifferences);
  replace(view.paramsTable, h("thead", {}, head), h("tbody", {}, body));
  view.paramsCount.textContent = shown.length > 1 ? `${differing} of ${total} rows differ` : "";
}

/** A long text (a 3,000-character parameter, a page of notes) clamped to a few lines, whole on click (or Enter);
 * anything else as it is. */
function clampLong(content) {
  if (typeof content !== "string" || (content.length <= CLAMP_CHARS && content.split("\n").length <= CLAMP_LINES))
    return content;
  const cell = h(
    "div",
    {
      class: "clamped",
      role: "button",
      tabindex: "0",
      "aria-expanded": "false",
      title: `${content.length.toLocaleString("en-US")} characters: click to show all`,
      dataset: { testid: "clamped" },
    },
    content,
  );
  const toggle = () => {
    const open = cell.classList.toggle("expanded");
    cell.setAttribute("aria-expanded", String(open));
    cell.title = open ? "click to fold" : `${content.length.toLocaleString("en-US")} characters: click to show all`;
  };
  cell.addEventListener("click", () => {
    if (!String(window.getSelection() || "")) toggle(); // selecting text to copy does not fold it
  });
  cell.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle();
    }
  });
  return cell;
}

// -------------------------------------------------------------------------------------------- diagnosis

function renderDiagnosis() {
  const shown = readyRuns();
  view.diagnosisCard.hidden = !shown.length;
  replace(
    view.diagnosisList,
    shown.map((run) => {
      const recommendation = run.diagnosis && run.diagnosis.recommendation;
      const reason = recommendation ? recommendation.reason : "No epochs reported yet: nothing to diagnose.";
      return h(
        "li",
        { class: "diagnosis-row", dataset: { testid: "diagnosis-row", operationId: run.id } },
        swatch(colorOf(run.id)),
        runLink(run.id, runTitle(run.operation)),
        recommendation ? actionBadge(recommendation.action) : h("span", { class: "badge" }, "no diagnosis"),
        h("span", { class: "diagnosis-reason", title: reason }, reason),
      );
    }),
  );
}

// ----------------------------------------------------------------------------------------------- picker

function swatch(colorValue) {
  const element = h("span", { class: "swatch", "aria-hidden": "true" });
  element.style.background = colorValue;
  return element;
}

function chip(id) {
  const run = runs.get(id);
  const remove = h(
    "button",
    {
      type: "button",
      class: "chip-remove",
      "aria-label": `Remove ${id} from the comparison`,
      title: "Remove",
      dataset: { testid: "remove-run" },
      onclick: () => removeRun(id),
    },
    "×",
  );
  const state = run ? run.state : "loading";
  const attributes = { class: `chip ${state}`, dataset: { testid: "compare-run", operationId: id, state } };
  const idText = h("span", { class: "mono" }, id);
  if (state === "loading") {
    return h("span", attributes, swatch(colorOf(id)), idText, h("span", { class: "muted" }, "loading…"), remove);
  }
  if (state === "missing") {
    return h("span", { ...attributes, title: "no run has this id" }, idText, h("span", {}, "unknown"), remove);
  }
  if (state === "error") {
    return h("span", { ...attributes, title: run.error }, idText, h("span", {}, "could not load"), remove);
  }
  const operation = run.operation;
  return h(
    "span",
    { ...attributes, title: id },
    swatch(colorOf(id)),
    runLink(id, runTitle(operation)),
    ACTIVE.has(operation.status) && statusBadge(operation.status, { cancelRequested: operation.cancel_requested }),
    remove,
  );
}

function optionLabel(operation) {
  const epochs = operation.epochs_completed ? ` · ${operation.epochs_completed} ep` : "";
  const when = formatTime(operation.created_at);
  return `${runTitle(operation)} · ${operation.status}${epochs} · ${when} · …${operation.operation_id.slice(-8)}`;
}

function renderPicker() {
  replace(view.chips, ids.map(chip));
  const select = view.addRun;
  const choices = (catalog || []).filter((operation) => !ids.includes(operation.operation_id));
  let placeholder = "+ Add a run…";
  if (catalog === null) placeholder = "Loading runs…";
  else if (catalogError) placeholder = "Runs unavailable";
  else if (!choices.length) placeholder = catalog.length ? "Every run is selected" : "No runs yet";
  replace(
    select,
    h("option", { value: "", selected: true, disabled: true }, placeholder),
    choices.map((operation) => h("option", { value: operation.operation_id }, optionLabel(operation))),
  );
  select.disabled = !choices.length;
  if (catalogError) select.title = catalogError;
  view.emptyState.hidden = ids.length > 0;
  view.content.hidden = ids.length === 0;
  const ready = readyRuns().length;
  view.subtitle.textContent = ids.length
    ? `${ready} run${ready === 1 ? "" : "s"} side by side`
    : "Overlay runs' curves and see what differs between them";
  renderNotices();
}

function renderNotices() {
  const missing = ids.filter((id) => runs.get(id) && runs.get(id).state === "missing");
  const failed = ids.filter((id) => runs.get(id) && runs.get(id).state === "error");
  const notices = [];
  if (missing.length) {
    notices.push(
      h(
        "div",
        { class: "notice warning", dataset: { testid: "unknown-runs" } },
        `No run has the id${missing.length > 1 ? "s" : ""} `,
        missing.flatMap((id, i) => [i ? ", " : "", h("code", {}, id)]),
        ": it may have been deleted, or the address has a typo. The other runs are shown. ",
        h(
          "button",
          { type: "button", class: "link-button", onclick: () => missing.forEach(removeRun) },
          "Remove from the comparison",
        ),
      ),
    );
  }
  for (const id of failed) {
    notices.push(h("div", { class: "notice error" }, h("code", {}, id), `: ${runs.get(id).error}`));
  }
  replace(view.notices, notices);
}

async function addRun(id) {
  if (!id || ids.includes(id)) return;
  ids.push(id);
  writeAddress();
  const run = loadRun(id);
  renderData();
  await run;
  if (ids.includes(id)) renderData();
}

function removeRun(id) {
  ids = ids.filter((other) => other !== id);
  runs.delete(id);
  colorSlots.delete(id);
  writeAddress();
  renderData();
}

// ----------------------------------------------------------------------------------------------- layout

function renderData() {
  renderPicker();
  renderChart();
  renderDiagnosis();
  renderTable();
}

function segmented(name, choices, current, onChoose) {
  const group = h("div", { class: "segmented", role: "group", "aria-label": name });
  for (const [value, text] of choices) {
    const button = h("button", { type: "button", "aria-pressed": String(value === current), dataset: { value } }, text);
    button.addEventListener("click", () => {
      for (const other of group.children) other.setAttribute("aria-pressed", String(other === button));
      onChoose(value);
    });
    group.append(button);
  }
  return group;
}

function layout() {
  view.subtitle = h("p", { class: "muted subtitle" });
  view.chips = h("div", { class: "chips" });
  view.addRun = h("select", {
    class: "add-run",
    dataset: { testid: "add-run" },
    "aria-label": "Add a run to the comparison",
    onchange: (event) => addRun(event.target.value),
  });
  view.notices = h("div", { class: "notices" });
  view.emptyState = h(
    "div",
    { class: "card empty compare-empty", dataset: { testid: "compare-empty" } },
    h("h2", {}, "No runs to compare yet"),
    h(
      "p",
      {},
      "Pick runs with “Add a run” above, or tick them on the ",
      h("a", { href: "/" }, "Runs page"),
      " and press Compare. The selection lives in the address (",
      h("code", {}, "/compare?ids=a,b"),
      "), so the page can be bookmarked and shared.",
    ),
  );

  view.metricSelect = h("select", {
    dataset: { testid: "metric-select" },
    "aria-label": "Metric",
    onchange: (event) => {
      chosenMetric = event.target.value;
      renderChart();
    },
  });
  const toggle = (key, text, testid) => {
    const input = h("input", { type: "checkbox", dataset: { testid } });
    input.checked = Boolean(options[key]);
    input.addEventListener("change", () => {
      options[key] = input.checked;
      saveOptions();
      renderChart();
    });
    return [input, h("label", { class: "check" }, input, text)];
  };
  const [trainToggle, trainLabel] = toggle("train", "train (dashed)", "train-toggle");
  const [, logLabel] = toggle("log", "log y", "log-toggle");
  view.trainToggle = trainToggle;
  const smoothingValue = h("span", { class: "smoothing-value num" }, options.smoothing.toFixed(2));
  const smoothing = h("input", {
    type: "range",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: String(options.smoothing),
    "aria-label": "Smoothing",
    dataset: { testid: "smoothing" },
  });
  smoothing.addEventListener("input", () => {
    options.smoothing = Number(smoothing.value);
    smoothingValue.textContent = options.smoothing.toFixed(2);
    saveOptions();
    renderChart();
  });
  const xAxis = segmented(
    "x axis",
    [
      ["epoch", "Epoch"],
      ["time", "Wall time"],
    ],
    options.x,
    (value) => {
      options.x = value;
      saveOptions();
      renderChart();
    },
  );
  xAxis.dataset.testid = "x-axis";

  view.chart = h("div", { class: "chart compare-chart", dataset: { testid: "compare-chart", seriesCount: "0" } });
  view.legend = h("div", { class: "compare-legend", dataset: { testid: "compare-legend" } });
  view.diagnosisList = h("ul", { class: "diagnosis-list" });
  view.diagnosisCard = h("section", { class: "card" }, h("h2", {}, "Diagnosis"), view.diagnosisList);
  view.paramsTable = h("table", { class: "data params", dataset: { testid: "params-table" } });
  view.paramsCount = h("span", { class: "muted params-count" });
  const onlyDifferencesInput = h("input", { type: "checkbox", dataset: { testid: "only-differences" } });
  onlyDifferencesInput.addEventListener("change", () => {
    onlyDifferences = onlyDifferencesInput.checked;
    view.paramsTable.classList.toggle("only-differences", onlyDifferences);
  });
  view.paramsCard = h(
    "section",
    { class: "card params-card" },
    h(
      "div",
      { class: "card-head" },
      h("h2", {}, "Parameters & summary"),
      view.paramsCount,
      h("span", { class: "spacer" }),
      h("label", { class: "check" }, onlyDifferencesInput, "only differences"),
    ),
    h("div", { class: "table-wrap" }, view.paramsTable),
  );
  view.content = h(
    "div",
    { class: "compare-content" },
    h(
      "section",
      { class: "card chart-card" },
      h(
        "div",
        { class: "chart-toolbar" },
        h("label", { class: "field" }, h("span", { class: "muted" }, "Metric"), view.metricSelect),
        xAxis,
        logLabel,
        trainLabel,
        h("label", { class: "field smoothing" }, h("span", { class: "muted" }, "Smoothing"), smoothing, smoothingValue),
      ),
      view.chart,
      h(
        "div",
        { class: "chart-foot muted" },
        "◉ best epoch (the diagnosis's, at its recorded value) · drag to zoom, double-click to reset",
      ),
      view.legend,
    ),
    view.diagnosisCard,
    view.paramsCard,
  );

  replace(
    main(),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Compare runs"), view.subtitle)),
    h("section", { class: "card picker" }, view.chips, view.addRun),
    view.notices,
    view.emptyState,
    view.content,
  );

}

async function start() {
  ids = idsFromAddress();
  ids.forEach(colorOf);
  layout();
  for (const id of ids) runs.set(id, { id, state: "loading" });
  renderData();
  const catalogLoaded = loadCatalog();
  const [loadedDefinitions] = await Promise.all([metricDefinitions(), ...ids.map(loadRun)]);
  definitions = loadedDefinitions;
  renderData();
  if (!ids.length) await catalogLoaded.then(markReady);
  schedulePoll();
}

start();
