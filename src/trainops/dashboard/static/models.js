// The models page (/models): the model registry (GET /models) in one table, with the run each model came from
// linked to its page; filtered by text and sorted by any column, both kept in the address (?q=eurusd&sort=test&
// dir=desc). A server installed without the `train` extra answers 501: the page shows the server's message.

import { ApiError, api, formatTime, h, main, replace, runLink, setConnection, showBanner, timeAgo } from "./common.js";
import * as table from "./table.js";

// Until a column is picked the rows keep the registry's order: the newest saved first.
const DEFAULT_SORT = { key: null, dir: "desc" };

const COLUMNS = [
  { key: "name", label: "Name", value: (m) => m.model_name.toLowerCase(), firstDir: "asc" },
  { key: "symbol", label: "Symbol", value: (m) => m.symbol.toLowerCase(), firstDir: "asc" },
  { key: "timeframe", label: "Timeframe", value: (m) => m.timeframe.toLowerCase(), firstDir: "asc" },
  { key: "strategy", label: "Strategy", value: (m) => m.strategy.toLowerCase(), firstDir: "asc" },
  { key: "created", label: "Created", value: (m) => Date.parse(m.created_at), numeric: true, firstDir: "desc" },
  {
    key: "training",
    label: "Train acc.",
    value: (m) => m.training_accuracy,
    numeric: true,
    firstDir: "desc",
    title: "Accuracy on the training data",
  },
  {
    key: "test",
    label: "Test acc.",
    value: (m) => m.test_accuracy,
    numeric: true,
    firstDir: "desc",
    title: "Accuracy on the held-out test data",
  },
  { key: "description", label: "Description", value: (m) => (m.description || "").toLowerCase() || null, firstDir: "asc" },
  { key: "size", label: "Size", value: (m) => m.model_size_mb, numeric: true, firstDir: "desc" },
  { key: "source", label: "Source run", value: (m) => m.source_operation || null, firstDir: "desc" },
];

const state = { models: [], loaded: false, q: "", sort: { ...DEFAULT_SORT } };
const view = {};

// ------------------------------------------------------------------------------------------------ address

function readAddress() {
  const search = new URLSearchParams(location.search);
  state.q = search.get("q") || "";
  state.sort = table.readSort(search, COLUMNS, state.sort);
}

function writeAddress() {
  table.writeAddress({ q: state.q }, state.sort, DEFAULT_SORT);
}

// ------------------------------------------------------------------------------------------------- layout

function layout() {
  view.summary = h("p", { class: "muted summary" }, "Loading…");
  view.text = table.textFilter(
    { placeholder: "Filter: name, symbol, strategy, run", "aria-label": "Filter models by text", "data-testid": "model-filter" },
    state.q,
    (text) => {
      state.q = text;
      writeAddress();
      render();
    },
  );
  view.headers = table.sortableHeaders(COLUMNS, sortBy);
  view.body = h("tbody", {}, table.placeholderRow(COLUMNS.length, h("span", { class: "spinner" }), "Loading models…"));
  const head = h("thead", {}, h("tr", {}, [...view.headers.values()]));
  view.table = h("table", { class: "data models", "data-testid": "models-table" }, head, view.body);
  view.wrap = h("div", { class: "table-wrap page-table" }, view.table);
  view.notice = h("div", { class: "card page-notice models-notice", hidden: true });
  view.toolbar = h("div", { class: "row toolbar" }, view.text);
  replace(
    main(),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Models"), view.summary), view.toolbar),
    view.wrap,
    view.notice,
  );
}

function sortBy(column) {
  state.sort = table.nextSort(state.sort, column);
  writeAddress();
  render();
}

// ------------------------------------------------------------------------------------------------- render

const FILTER_FIELDS = ["model_name", "symbol", "timeframe", "strategy", "architecture", "description", "source_operation"];

function matches(model) {
  return table.matchesWords(state.q, FILTER_FIELDS.map((field) => model[field]));
}

/** Sorted by the chosen column, models without a value last; until one is chosen, the registry's order. */
function sorted(models) {
  const column = COLUMNS.find((c) => c.key === state.sort.key);
  return column ? table.sortItems(models, column.value, state.sort.dir) : models;
}

function render() {
  table.showSort(view.headers, state.sort);
  const total = state.models.length;
  if (total === 0) {
    showNotice(emptyState());
    view.summary.textContent = "No models saved yet";
    return;
  }
  view.notice.hidden = true;
  view.wrap.hidden = false;
  view.toolbar.hidden = false;
  const shown = sorted(state.models.filter(matches));
  const filtered = shown.length !== total ? ` · ${shown.length} shown` : "";
  view.summary.textContent = `${total} model${total === 1 ? "" : "s"}${filtered}`;
  if (!shown.length) {
    replace(view.body, table.noMatchRow(COLUMNS.length, "No models match this filter. ", "Clear the filter", clearFilter));
    return;
  }
  replace(view.body, shown.map(modelRow));
}

function clearFilter() {
  state.q = "";
  view.text.value = "";
  writeAddress();
  render();
}

function showNotice(children) {
  replace(view.notice, children);
  view.notice.hidden = false;
  view.wrap.hidden = true;
  view.toolbar.hidden = true;
}

function modelRow(model) {
  const accuracy = (value) => (value === null || value === undefined ? h("span", { class: "muted" }, "–") : percent(value));
  return h(
    "tr",
    { "data-testid": "model-row", dataset: { modelName: model.model_name } },
    h(
      "td",
      { class: "col-name" },
      h("div", { class: "name" }, model.model_name),
      model.architecture ? h("div", { class: "sub" }, model.architecture) : null,
    ),
    h("td", { class: "col-symbol" }, model.symbol),
    h("td", { class: "col-timeframe" }, model.timeframe),
    h("td", { class: "col-strategy" }, model.strategy),
    h("td", { class: "col-created num", title: `${new Date(model.created_at).toLocaleString()} (${timeAgo(model.created_at)})` }, formatTime(model.created_at)),
    h("td", { class: "col-training num" }, accuracy(model.training_accuracy)),
    h("td", { class: "col-test num" }, accuracy(model.test_accuracy), f1(model)),
    h("td", { class: "col-description", title: model.description || "" }, model.description || h("span", { class: "muted" }, "–")),
    h("td", { class: "col-size num" }, formatSize(model.model_size_mb)),
    h(
      "td",
      { class: "col-source" },
      !model.source_operation
        ? h("span", { class: "muted", title: "saved without a recorded run" }, "–")
        : model.source_deleted
          ? h("span", { class: "muted mono", "data-testid": "source-deleted", title: "the run was deleted; the model stays" }, `${model.source_operation} (deleted)`)
          : runLink(model.source_operation),
    ),
  );
}

function percent(value) {
  return `${(value * 100).toFixed(1)}%`;
}

function f1(model) {
  return model.f1_score === null || model.f1_score === undefined ? null : h("div", { class: "sub" }, `F1 ${model.f1_score.toFixed(3)}`);
}

function formatSize(megabytes) {
  if (megabytes === null || megabytes === undefined || !Number.isFinite(megabytes) || megabytes <= 0) return "–";
  const bytes = megabytes * 1024 * 1024;
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

function emptyState() {
  return [
    h("h2", {}, "No models saved yet"),
    h("p", { class: "muted" }, "A finished training writes a model; give it a name to keep it here and predict with it:"),
    h("pre", { class: "snippet" }, "trainops models save op_training_20250610_123456_ab12cd34 eurusd-mr"),
    h("p", { class: "muted" }, "or over the REST API:"),
    h(
      "pre",
      { class: "snippet" },
      'POST /api/v1/models/save\n{"task_id": "op_training_20250610_123456_ab12cd34", "model_name": "eurusd-mr"}',
    ),
  ];
}

function unavailable(error) {
  return [
    h("h2", {}, "The model registry is not installed on this server"),
    h("p", { class: "server-message", "data-testid": "models-unavailable" }, error.message),
    h("p", { class: "muted" }, "Runs, curves and comparisons work without it; models need the server's train extra."),
  ];
}

// -------------------------------------------------------------------------------------------------- data

async function load() {
  try {
    const data = await api("/models");
    state.models = data.models || [];
    state.loaded = true;
    showBanner(null);
    setConnection("");
    render();
  } catch (error) {
    if (error instanceof ApiError && error.status === 501) {
      view.summary.textContent = "Unavailable";
      showNotice(unavailable(error));
    } else {
      const message = error instanceof ApiError ? error.message : String(error);
      showBanner(`Could not load the models: ${message}`, "error");
      setConnection("error");
      replace(view.body, table.placeholderRow(COLUMNS.length, "The models could not be loaded."));
    }
  }
  document.body.dataset.ready = "1";
}

readAddress();
layout();
load();
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.loaded) load();
});
