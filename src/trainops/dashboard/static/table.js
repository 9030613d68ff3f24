// The table pages' shared machinery (runs, models): the sort and filters kept in the address, sortable headers
// (click, Enter or Space; aria-sort), a sort that puts missing values last either way, a text filter that
// matches every word, and placeholder rows (loading, nothing matches). A column is { key, label, firstDir,
// numeric, title }: `firstDir` is the direction a first click sorts in.

import { h } from "./common.js";

/** The sort ({ key, dir }) the address asks for (?sort=<key>&dir=asc|desc), or `fallback` when it names no column. */
export function readSort(search, columns, fallback) {
  const column = columns.find((c) => c.key === search.get("sort"));
  if (!column) return fallback;
  const dir = search.get("dir");
  return { key: column.key, dir: dir === "asc" || dir === "desc" ? dir : column.firstDir };
}

/** Replace the address's query with `params` (empty values left out) and the sort, unless it is `defaultSort`. */
export function writeAddress(params, sort, defaultSort) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  if (sort.key && (sort.key !== defaultSort.key || sort.dir !== defaultSort.dir)) {
    search.set("sort", sort.key);
    search.set("dir", sort.dir);
  }
  const text = search.toString();
  history.replaceState(null, "", `${location.pathname}${text ? `?${text}` : ""}`);
}

/** The sort after a click on `column`: the other direction when it is the sorted column, else its first. */
export function nextSort(sort, column) {
  if (sort.key === column.key) return { key: sort.key, dir: sort.dir === "asc" ? "desc" : "asc" };
  return { key: column.key, dir: column.firstDir };
}

/**
 * `items` sorted by `value(item)` in `dir` ("asc" or "desc"); an item without a value (null, undefined, NaN) goes
 * last either way, and ties keep their order in `items` (the sort is stable).
 */
export function sortItems(items, value, dir) {
  const sign = dir === "asc" ? 1 : -1;
  const missing = (x) => x === null || x === undefined || Number.isNaN(x);
  return [...items].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
    return missing(x) || x === y ? 0 : (x < y ? -1 : 1) * sign;
  });
}

/** The header cells of `columns`, by key: each sorts by its column (`onSort(column)`) on a click, Enter or Space. */
export function sortableHeaders(columns, onSort) {
  const headers = new Map();
  for (const column of columns) {
    const th = h(
      "th",
      { class: `sortable col-${column.key}${column.numeric ? " num" : ""}`, tabindex: "0", scope: "col", title: column.title },
      column.label,
    );
    th.dataset.sort = column.key;
    th.addEventListener("click", () => onSort(column));
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onSort(column);
      }
    });
    headers.set(column.key, th);
  }
  return headers;
}

/** Mark the headers (from sortableHeaders) with aria-sort: the sorted column ascending or descending, others none. */
export function showSort(headers, sort) {
  for (const [key, th] of headers) {
    th.setAttribute("aria-sort", key === sort.key ? (sort.dir === "asc" ? "ascending" : "descending") : "none");
  }
}

/** A search box for the text filter, showing `value`; `onChange(text)` hears each edit, trimmed. */
export function textFilter(attributes, value, onChange) {
  const input = h("input", { type: "search", class: "text-filter", ...attributes });
  input.value = value;
  input.addEventListener("input", () => onChange(input.value.trim()));
  return input;
}

/** Whether `text` is empty or each of its words is in one of `fields` (case-insensitive; empty fields are skipped). */
export function matchesWords(text, fields) {
  if (!text) return true;
  const haystack = fields.filter(Boolean).join(" ").toLowerCase();
  return text
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((word) => haystack.includes(word));
}

/** A row across `columns` columns that says something instead of data: loading, an error, nothing matches. */
export function placeholderRow(columns, ...children) {
  return h("tr", { class: "placeholder" }, h("td", { colspan: String(columns) }, ...children));
}

/** The row shown when no row matches the filters: `message` and a button (`label`) that calls `clear`. */
export function noMatchRow(columns, message, label, clear) {
  return placeholderRow(columns, message, h("button", { type: "button", class: "link-button", onclick: clear }, label));
}
