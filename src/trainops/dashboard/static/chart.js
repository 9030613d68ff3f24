// Chart helpers for the dashboard's metric curves, on uPlot (the global `uPlot`): metric values as the API sends
// them, debiased EMA smoothing, train/validation pairing, axis formats, the diagnosis's projection as a curve, and
// DOM overlays (markers, shaded regions, labels) positioned on a plot. Pure functions where they can be, so the
// run page and the compare page draw the same way. Plain ES module, no build step.

import { formatMetric, formatNumber } from "./common.js";

// ------------------------------------------------------------------------------------------------ values

/**
 * A metric as the API sends it, as a number: JSON numbers as they are, the strings "NaN", "Infinity" and
 * "-Infinity" (how trainops writes non-finite values) as NaN and ±Infinity, anything absent as null.
 *   toNumber(0.5) === 0.5; toNumber("NaN") is NaN; toNumber(undefined) === null
 */
export function toNumber(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  const number = Number(value);
  return Number.isNaN(number) ? null : number;
}

const FIELD_METRICS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration"];

/** One metric's value in an epoch record (a standard field or an entry of `metrics`), as toNumber reads it. */
export function metricValue(record, name) {
  if (FIELD_METRICS.includes(name)) return toNumber(record[name]);
  return toNumber(record.metrics ? record.metrics[name] : undefined);
}

/** Every metric name the records report, standard fields first, then the others in order of appearance. */
export function reportedMetrics(records) {
  const standard = new Set();
  const custom = new Set();
  for (const record of records) {
    for (const name of FIELD_METRICS) if (record[name] !== null && record[name] !== undefined) standard.add(name);
    for (const name of Object.keys(record.metrics || {})) custom.add(name);
  }
  return [...FIELD_METRICS.filter((name) => standard.has(name)), ...custom];
}

/**
 * Debiased exponential moving average, as TensorBoard smooths: s_t = a*s_{t-1} + (1-a)*x_t, divided by 1 - a^t
 * so the start is not pulled towards 0, where t counts the finite values seen. Non-finite and missing values are
 * passed through unchanged and leave the average alone. `weight` (a) is 0 (no smoothing) to below 1.
 *   emaSmooth([1, 2, 3], 0)        // [1, 2, 3]
 *   emaSmooth([2, null, 2], 0.9)   // [2, null, 2]: a constant stays constant, debiased
 */
export function emaSmooth(values, weight) {
  const a = Math.min(Math.max(Number(weight) || 0, 0), 0.999);
  if (a === 0) return values.slice();
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      out[i] = x;
      continue;
    }
    last = a * last + (1 - a) * x;
    count += 1;
    out[i] = last / (1 - Math.pow(a, count));
  }
  return out;
}

// --------------------------------------------------------------------------------------------- metrics

const SPLITS = [
  ["train_", "train"],
  ["val_", "val"],
  ["train/", "train"], // Ultralytics' and Lightning's spelling (train/box_loss, val/box_loss)
  ["val/", "val"],
];

/**
 * Group metric names into what a chart draws together: a training metric with its validation twin (`train_loss`
 * with `val_loss`, `train_x` with `val_x`, `train/x` with `val/x`), anything else alone. The family holding
 * `primary` (the diagnosis's monitor) comes first. Answers [{ key, train, val, names }]: `names` are the one or two metrics drawn, `key` a
 * unique name for the family (its names joined by "+").
 *   metricFamilies(["train_loss", "val_loss", "grad_norm"], "val_loss")
 *   // [{key: "train_loss+val_loss", train: "train_loss", val: "val_loss", names: [...]}, {key: "grad_norm", ...}]
 */
export function metricFamilies(names, primary) {
  const families = new Map();
  for (const name of names) {
    let key = name;
    let role = null;
    for (const [prefix, which] of SPLITS) {
      if (name.startsWith(prefix) && name.length > prefix.length) {
        key = name.slice(prefix.length);
        role = which;
      }
    }
    const family = families.get(key) || { key, train: null, val: null, single: null };
    if (role === "train" && !family.train) family.train = name;
    else if (role === "val" && !family.val) family.val = name;
    else family.single = family.single || name;
    families.set(key, family);
  }
  const answer = [];
  for (const family of families.values()) {
    // a bare `loss` beside `train_loss`/`val_loss` is its own family rather than a third line
    if (family.single) answer.push({ key: family.single, train: null, val: null, names: [family.single] });
    const pair = [family.train, family.val].filter(Boolean);
    if (pair.length) answer.push({ key: pair.join("+"), train: family.train, val: family.val, names: pair });
  }
  const first = answer.findIndex((family) => family.names.includes(primary));
  if (first > 0) answer.unshift(...answer.splice(first, 1));
  return answer;
}

/** A family's name for a person: its validation metric's label without "Validation", else its metric's label. */
export function familyLabel(family, definitions) {
  const name = family.val || family.train || family.names[0];
  const label = (definitions[name] && definitions[name].label) || name;
  if (family.names.length < 2) return label;
  const bare = label.replace(/^(validation|training|val|train)[\s_/]+/i, "");
  return bare.charAt(0).toUpperCase() + bare.slice(1);
}

/** "↓ lower is better", "↑ higher is better", or "" for a metric that is not a score (the learning rate). */
export function betterHint(definition) {
  if (!definition || definition.higher_is_better === null || definition.higher_is_better === undefined) return "";
  return definition.higher_is_better ? "↑ higher is better" : "↓ lower is better";
}

// ------------------------------------------------------------------------------------------------ axes

/** The decimals a tick step needs to tell its ticks apart: those of the step itself (0.25 -> 2, 2.5 -> 1, 50 -> 0),
 * not of its power of ten (0.25 is 2.5e-1, and one decimal would print 2.25 as "2.3"). At most 10. */
export function stepDecimals(step) {
  if (!(step > 0) || !Number.isFinite(step)) return 0;
  for (let decimals = 0; decimals < 10; decimals += 1) {
    const scaled = step * Math.pow(10, decimals);
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * scaled) return decimals;
  }
  return 10;
}

/**
 * Axis tick labels for uPlot (`axes[i].values`) in a metric's format: percent ticks as "85%", floats with as many
 * decimals as the tick spacing needs, log ticks in 4 significant digits. `onTicks(labels)` (optional) hears the
 * labels each time they are drawn (the run page exposes them for tests and assistive text).
 */
export function tickFormatter(definition, { log = false, onTicks = null } = {}) {
  const percent = definition && definition.format === "percent";
  return (u, splits, axisIdx, space, increment) => {
    let labels;
    if (log) {
      // label the round values only (1, 2, 3, 5 times a power of ten), not the scale's ends
      const round = (value) => {
        const mantissa = value / Math.pow(10, Math.floor(Math.log10(value) + 1e-9));
        return [1, 2, 3, 5].some((m) => Math.abs(mantissa - m) < 1e-6 * m);
      };
      labels = splits.map((value) => {
        if (value === null || !(value > 0) || !round(value)) return null;
        return percent ? `${formatNumber(value * 100)}%` : formatNumber(value);
      });
    } else {
      const decimals = stepDecimals(percent ? increment * 100 : increment);
      labels = splits.map((value) => {
        if (value === null) return null;
        const shown = percent ? value * 100 : value;
        const magnitude = Math.abs(shown);
        const text =
          magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-4) ? shown.toExponential(1) : shown.toFixed(decimals);
        return percent ? `${text}%` : text;
      });
    }
    if (onTicks) onTicks(labels);
    return labels;
  };
}

/** A y axis wide enough for its longest label (uPlot's `axes[i].size`). */
export function axisSize(u, values, axisIdx, cycleNum) {
  const longest = (values || []).reduce((most, value) => Math.max(most, value ? String(value).length : 0), 0);
  return Math.max(40, Math.ceil(longest * 7 + 18));
}

const AXIS_FONT = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

/** An axis's look (uPlot's `axes[i]`): grey labels, a faint grid and ticks; `fonts` ({ font, labelFont }) override. */
export function axisStyle(fonts = {}) {
  return {
    stroke: "#6b7280",
    font: AXIS_FONT,
    labelFont: `600 ${AXIS_FONT}`,
    grid: { stroke: "#eef0f3", width: 1 },
    ticks: { stroke: "#e5e7eb", width: 1, size: 4 },
    ...fonts,
  };
}

/** Tick spacings for a linear axis of values (uPlot's `axes[i].incrs`): uPlot's own (1, 2, 2.5 and 5 times each
 * power of ten from 1e-16), carried on up to 1e300. Its own stop at 1e16, which left an axis of larger values (a
 * loss diverged to 1e300) without a single label. Below 1e-16 uPlot cannot place ticks (it counts their decimals,
 * at most 17), so the list starts where its own does. Parsed from text: each is the exact decimal. */
export const VALUE_INCRS = Array.from({ length: 317 }, (_, index) =>
  [1, 2, 2.5, 5].map((mantissa) => Number(`${mantissa}e${index - 16}`)),
).flat();

/** What a y axis (uPlot's `axes[i]`) needs for its ticks on a linear scale; nothing on a log one (its own ticks). */
export function valueTicks(log) {
  return log ? {} : { incrs: VALUE_INCRS };
}

/** A y scale (uPlot's `scales.y`); a log one fits the values (uPlot's own widens it to whole decades: 1-10 for 0.9-1.1). */
export function yScale(log) {
  return log ? { distr: 3, range: logRange } : { distr: 1, range: linearRange };
}

/** uPlot's own linear range, except for a flat curve: uPlot pads 0 to 0-100 (an mAP50 still at 0 read 0-10000%);
 * here it is padded by a tenth of its value (by 1 at 0), never below 0 for a curve that has not been. */
export function linearRange(u, min, max) {
  if (min === null || max === null || min === undefined || max === undefined) return [min, max];
  if (min !== max) return uPlot.rangeNum(min, max, 0.1, true);
  const pad = Math.abs(min) * 0.1 || 1;
  return [min >= 0 ? Math.max(0, min - pad) : min - pad, max + pad];
}

/** The span a log axis is drawn over: uPlot's log ticks are exact decades from 1e-16 to 1e16 only (past them its
 * tick code throws and the chart is lost), so a value beyond is drawn at the edge, clipped, as on a linear axis
 * that has been zoomed. */
export const LOG_SPAN = [1e-15, 1e15];

export function logRange(u, min, max) {
  if (!(min > 0) || !(max > 0)) return [1, 10];
  const [floor, ceiling] = LOG_SPAN;
  const low = Math.min(Math.max(min, floor), ceiling / 10);
  const high = Math.max(Math.min(max, ceiling), low);
  const pad = Math.max(1.08, Math.pow(high / low, 0.06));
  return [Math.max(low / pad, floor), Math.min(high * pad, ceiling)];
}

/** Elapsed seconds for a time axis: "0 s", "45 s", "12 min", "1 h 05", "2 d 3 h". */
export function formatElapsed(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return "";
  const s = Math.abs(seconds);
  if (s < 60) return `${Number(s.toPrecision(3))} s`;
  if (s < 3600) return `${Number((s / 60).toPrecision(3))} min`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")}`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

/** A legend value in a metric's format (uPlot's `series[i].value`); at a gap, "NaN", "∞" or "−∞" when
 * `nonFiniteAt` (a Map from x to the record's raw value) says the record held one there, else "–" (not logged). */
export function legendValue(definition, nonFiniteAt = null) {
  return (u, value, seriesIdx, idx) => {
    if (value !== null && value !== undefined) return formatMetric(value, definition);
    // a gap: not logged ("–"), or NaN or infinite in the record (plotted as a gap, but a fact worth reading)
    const x = nonFiniteAt && idx !== null && idx !== undefined ? u.data[0][idx] : undefined;
    const raw = x === undefined ? undefined : nonFiniteAt.get(x);
    if (raw === undefined) return "–";
    if (Number.isFinite(raw)) return formatMetric(raw, definition); // a value the log axis leaves out
    return Number.isNaN(raw) ? "NaN" : raw > 0 ? "∞" : "−∞";
  };
}

// ------------------------------------------------------------------------------------------------ x axis

/**
 * A function from epoch number to x (step, seconds, ...) for drawing epoch-based marks on another axis: exact at
 * known epochs, linear between them, and extrapolated past the last one at the recent pace (the mean over the last
 * ten epochs), so a projection to the planned end lands where that epoch is expected. `pairs` is [[epoch, x]]
 * ordered by epoch; null when fewer than one pair.
 */
export function epochToX(pairs) {
  if (!pairs.length) return null;
  const epochs = pairs.map((pair) => pair[0]);
  const xs = pairs.map((pair) => pair[1]);
  const n = pairs.length;
  const back = Math.max(0, n - 11);
  const pace = n > 1 && epochs[n - 1] > epochs[back] ? (xs[n - 1] - xs[back]) / (epochs[n - 1] - epochs[back]) : 1;
  return (epoch) => {
    if (epoch >= epochs[n - 1]) return xs[n - 1] + (epoch - epochs[n - 1]) * pace;
    if (epoch <= epochs[0]) return xs[0] - (epochs[0] - epoch) * pace;
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (epochs[mid] <= epoch) lo = mid;
      else hi = mid;
    }
    const span = epochs[hi] - epochs[lo];
    return span ? xs[lo] + ((xs[hi] - xs[lo]) * (epoch - epochs[lo])) / span : xs[lo];
  };
}

// ------------------------------------------------------------------------------------------ projection

/**
 * The diagnosis's projection (rule projected_improvement, see core/projection.py) as curves over the epochs
 * left, redrawn from its own evidence rather than guessed:
 *   - `trend`: the recent trend from `level` (where the metric is now), slowing per epoch as it has been slowing
 *     (decay_per_window spread over the window's epochs, times learning_rate_pace: the learning rate's fall carried
 *     forward), so at the end it has gained exactly `trend_gain`;
 *   - `best`: the trend minus the luck a noisy metric has over k epochs (noise_gain scaled by sqrt(ln(k+1)), as
 *     the projection's expected best of k draws), ending at `projected_best` (a loss, here, never below 0);
 *   - `worst`: the trend one noise standard deviation on the worse side: where single epochs will scatter.
 * The band between `best` and `worst` is what continuing is expected to bring. Answers { epochs, trend, best,
 * worst, lower, upper } (lower/upper: the band's edges in value order) sampled at up to `samples` epochs from the
 * last epoch analyzed to the planned end, or null when there is nothing to project.
 *
 * `mode` is the diagnosis's ("min" or "max"); `windowPoints` how many epochs the trend was fitted on (to spread
 * the per-window decay over; to_epoch - from_epoch + 1 by default); `nonNegative` keeps a loss's curves at 0 or
 * above.
 */
export function projectionCurves(
  evidence,
  { mode = "min", windowPoints = null, samples = 80, nonNegative = false } = {},
) {
  if (!evidence) return null;
  const left = Number(evidence.epochs_left);
  const level = toNumber(evidence.level);
  if (!(left > 0) || level === null || !Number.isFinite(level)) return null;
  const sign = mode === "max" ? -1 : 1; // judged as "lower is better", as the projection does
  const slope = toNumber(evidence.slope) || 0;
  const decay = Math.min(Math.max(toNumber(evidence.decay_per_window) ?? 1, 0), 1);
  const pace = Math.min(Math.max(toNumber(evidence.learning_rate_pace) ?? 1, 0), 1);
  const trendGain = Math.max(toNumber(evidence.trend_gain) || 0, 0);
  const noise = Math.max(toNumber(evidence.noise) || 0, 0);
  const noiseGain = Math.max(toNumber(evidence.noise_gain) || 0, 0);
  const from = Number(evidence.to_epoch);
  const width = Math.max(1, windowPoints || Number(evidence.to_epoch) - Number(evidence.from_epoch) + 1);
  const perEpoch = Math.pow(decay, 1 / width) * pace;
  const steps = (k) => (perEpoch >= 1 ? k : (perEpoch * (1 - Math.pow(perEpoch, k))) / (1 - perEpoch));
  const improving = sign * slope < 0 && trendGain > 0;
  const scale = improving && steps(left) > 0 ? trendGain / steps(left) : 0;
  const luck = (k) => (k > 0 ? noiseGain * Math.sqrt(Math.log(k + 1) / Math.log(left + 1)) : 0);
  const atLeastZero = (value) => (nonNegative && sign > 0 ? Math.max(value, 0) : value);
  const count = Math.max(2, Math.min(samples, left + 1));
  const curves = { epochs: [], trend: [], best: [], worst: [], lower: [], upper: [] };
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const k = Math.round((i * left) / (count - 1));
    if (k === previous) continue;
    previous = k;
    const trend = atLeastZero(level - sign * scale * steps(k));
    const best = atLeastZero(trend - sign * luck(k));
    const worst = atLeastZero(trend + sign * noise);
    curves.epochs.push(from + k);
    curves.trend.push(trend);
    curves.best.push(best);
    curves.worst.push(worst);
    curves.lower.push(Math.min(best, worst));
    curves.upper.push(Math.max(best, worst));
  }
  return curves;
}

// --------------------------------------------------------------------------------------------- uPlot

/**
 * A uPlot chart in `element` that follows the element's width (ResizeObserver) at a fixed height. `options` are
 * uPlot's (width is filled in). Answers { plot, destroy() }.
 */
export function createChart(element, options, data) {
  const width = Math.max(240, Math.floor(element.clientWidth || 600));
  const plot = new window.uPlot({ ...options, width }, data, element);
  let frame = null;
  const observer = new ResizeObserver(() => {
    const next = Math.floor(element.clientWidth);
    if (!next || next === plot.width) return;
    // coalesce a burst of resize notifications (a dragged window edge) into one redraw per frame
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => plot.setSize({ width: next, height: options.height }));
  });
  observer.observe(element);
  return {
    plot,
    destroy() {
      observer.disconnect();
      cancelAnimationFrame(frame);
      plot.destroy();
    },
  };
}

/**
 * A uPlot plugin that draws marks as DOM elements over the plot area (crisp text, and testable): vertical lines,
 * shaded x ranges, dots and labels, in data coordinates. `marks()` is called on every redraw and answers
 *   { lines: [{ x, label, className, testid, title }], regions: [{ from, to, label, className, testid }],
 *     dots: [{ x, y, className, title }], labels: [{ x, y, text, className, testid }] }
 * (each list optional). Marks outside the visible x range are left out; regions are clipped to it.
 */
export function overlayPlugin(marks) {
  let layer = null;
  const place = (u) => {
    if (!layer) return;
    const spec = marks(u) || {};
    const width = u.over.clientWidth;
    const height = u.over.clientHeight;
    const xAt = (x) => u.valToPos(x, "x");
    const children = [];
    for (const region of spec.regions || []) {
      const left = Math.max(0, xAt(region.from));
      const right = Math.min(width, xAt(region.to));
      if (!(right > left)) continue;
      const element = mark("div", `overlay-region ${region.className || ""}`, region.testid);
      element.style.left = `${left}px`;
      element.style.width = `${right - left}px`;
      if (region.label) element.append(mark("span", "overlay-region-label", null, region.label));
      children.push(element);
    }
    for (const line of spec.lines || []) {
      const left = xAt(line.x);
      if (!(left >= -1 && left <= width + 1)) continue;
      const element = mark("div", `overlay-line ${line.className || ""}`, line.testid);
      element.style.left = `${left}px`;
      if (line.title) element.title = line.title;
      if (left > width * 0.72) element.classList.add("flip"); // its label reads leftwards, inside the plot
      if (line.label) element.append(mark("span", "overlay-line-label", null, line.label));
      children.push(element);
    }
    for (const dot of spec.dots || []) {
      if (dot.y === null || dot.y === undefined || !Number.isFinite(dot.y)) continue;
      const left = xAt(dot.x);
      const top = u.valToPos(dot.y, dot.scale || "y");
      if (!(left >= 0 && left <= width && top >= 0 && top <= height)) continue;
      const element = mark("div", `overlay-dot ${dot.className || ""}`, dot.testid);
      element.style.left = `${left}px`;
      element.style.top = `${top}px`;
      if (dot.title) element.title = dot.title;
      children.push(element);
    }
    for (const label of spec.labels || []) {
      if (label.y === null || label.y === undefined || !Number.isFinite(label.y)) continue;
      const left = xAt(label.x);
      const top = u.valToPos(label.y, label.scale || "y");
      if (!(left >= 0 && left <= width + 1)) continue;
      const element = mark("div", `overlay-label ${label.className || ""}`, label.testid, label.text);
      element.style.left = `${left}px`;
      element.style.top = `${Math.min(Math.max(top, 8), height - 8)}px`;
      children.push(element);
    }
    layer.replaceChildren(...children);
    separateLineLabels(u.over, layer.querySelectorAll(".overlay-line-label"));
  };
  return {
    hooks: {
      init: (u) => {
        layer = document.createElement("div");
        layer.className = "overlay-layer";
        u.over.append(layer);
      },
      draw: place,
    },
  };
}

const LABEL_ROW_GAP_PX = 2;
const LABEL_ROWS = 4;

/** Keep the lines' labels from piling up (a run with many NaN epochs close together): in order (the best epoch's
 * label first), each label keeps its place or moves a row further from the nearest edge, into the first row where
 * it overlaps no label placed before it; one that fits in none of LABEL_ROWS rows is hidden, its line kept, its text
 * in the line's tooltip. */
function separateLineLabels(over, labels) {
  if (!labels.length) return;
  const box = over.getBoundingClientRect();
  const middle = box.top + box.height / 2;
  const placed = [];
  for (const label of labels) {
    const rect = label.getBoundingClientRect();
    if (!rect.width) continue;
    const rowHeight = rect.height + LABEL_ROW_GAP_PX;
    const step = rect.top + rect.height / 2 < middle ? rowHeight : -rowHeight; // away from its edge
    const clashes = (row) =>
      placed.some(
        (other) =>
          rect.left < other.right + 4 &&
          rect.right + 4 > other.left &&
          rect.top + row * step < other.bottom &&
          rect.bottom + row * step > other.top,
      );
    let row = 0;
    while (row < LABEL_ROWS && clashes(row)) row += 1;
    if (row === LABEL_ROWS) {
      label.hidden = true;
      const line = label.parentElement;
      line.title = line.title ? `${line.title}: ${label.textContent}` : label.textContent;
      line.dataset.labelHidden = "true";
      continue;
    }
    if (row) label.style.transform = `translateY(${row * step}px)`;
    placed.push({ left: rect.left, right: rect.right, top: rect.top + row * step, bottom: rect.bottom + row * step });
  }
}

function mark(tag, className, testid, text) {
  const element = document.createElement(tag);
  element.className = className.trim();
  if (testid) element.dataset.testid = testid;
  if (text) element.textContent = text;
  return element;
}

/** The colours of a train/validation pair: validation solid and strong, training dashed and lighter. */
export const SPLIT_STYLE = {
  val: { stroke: "#2563eb", width: 2, dash: null },
  train: { stroke: "#f97316", width: 1.75, dash: [6, 4] },
  single: { stroke: "#0f766e", width: 2, dash: null },
};

/** `color` (#rrggbb) at `alpha`, for the faint raw curve behind a smoothed one and for bands. */
export function fade(color, alpha) {
  const value = parseInt(color.slice(1), 16);
  return `rgba(${(value >> 16) & 255}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
}

/**
 * A uPlot plugin that keeps the legend on the values at `lastIndex(u)` (the latest epoch, say) while the cursor is
 * off the plot, instead of dashes: the legend then always reads as "where the run is now".
 */
export function legendAtLatest(lastIndex) {
  const show = (u) => {
    if (u.cursor.idx === null || u.cursor.idx === undefined) {
      const idx = lastIndex(u);
      if (idx !== null && idx !== undefined && idx >= 0) u.setLegend({ idx }, false);
    }
  };
  return { hooks: { ready: show, setData: show, setCursor: show } };
}

/** The index of `x` in uPlot's sorted x column (`u.data[0]`), or of the nearest x below it; null when none. */
export function indexOfX(xs, x) {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0 || x < xs[0]) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Whole-number tick spacings for an axis of epochs or steps (uPlot's `axes[i].incrs`): never a tick at 2.5. */
export const INTEGER_INCRS = [
  1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4, 25e3, 5e4, 1e5, 2e5, 25e4, 5e5, 1e6, 2e6,
  5e6, 1e7, 2e7, 5e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
];

/** Tick labels for small positive settings such as a learning rate: "1e-3", "7.5e-4"; plain numbers from 0.01. */
export function scientificTicks(u, splits) {
  return splits.map((value) => {
    if (value === null) return null;
    if (value === 0 || Math.abs(value) >= 0.01) return formatNumber(value);
    return value.toExponential(1).replace(/\.0e/, "e");
  });
}

/** Tick spacings for an axis of elapsed seconds (uPlot's `axes[i].incrs`): 1 s ... 30 s, 1 min ... 30 min, 1 h ... */
export const SECOND_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000,
];
