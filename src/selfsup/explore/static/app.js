// selfsup explore: the page. No build step, no library: one canvas per run (points drawn per
// colour with fillRect, zoom and pan by a view transform), samples and neighbours fetched from
// the server's JSON endpoints when the pointer asks for them.
"use strict";

const state = {
  runs: [], // /api/runs
  maps: [], // MapView per run
  selected: null, // {run, row, id}
  neighbours: [], // per run: the last /api/neighbours reply (or {error})
  queryResult: null, // per run: the last /api/query reply (or {error})
  tab: "neighbours",
  panelRun: 0,
  samples: new Map(), // "run/row" -> /api/sample reply
};

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];
function colourOf(c) {
  if (c < PALETTE.length) return PALETTE[c];
  return `hsl(${(c * 137.508) % 360}, 65%, 50%)`; // golden-angle hues past the palette
}

// A CSS colour at `alpha` over white, as one little-endian RGBA pixel of an ImageData.
const swatch = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
function packed(colour, alpha) {
  swatch.clearRect(0, 0, 1, 1);
  swatch.fillStyle = colour;
  swatch.fillRect(0, 0, 1, 1);
  const [r, g, b] = swatch.getImageData(0, 0, 1, 1).data;
  const over = (v) => Math.round(255 - alpha * (255 - v));
  return ((255 << 24) | (over(b) << 16) | (over(g) << 8) | over(r)) >>> 0;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(path, options) {
  const reply = await fetch(path, options);
  const type = reply.headers.get("Content-Type") || "";
  if (type.startsWith("application/json")) {
    const body = await reply.json();
    if (!reply.ok) throw new Error(body.error || reply.statusText);
    return body;
  }
  if (!reply.ok) throw new Error(`${reply.status} ${reply.statusText}`);
  return reply;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = false;
}
function clearError() {
  document.getElementById("error").hidden = true;
}

// ------------------------------------------------------------------ the map of one run

class MapView {
  constructor(index, info, parent) {
    this.index = index;
    this.info = info;
    this.highlight = { selected: -1, neighbours: [], query: null };
    const head = el("div", { class: "map-head" });
    head.append(
      el("b", { text: info.name }),
      ` · ${info.map_count.toLocaleString()} ${info.map_what} of ${info.data} · ` +
        `${info.layout} · coloured by ${info.colour_by}` +
        (info.knn_accuracy === null ? "" : ` · kNN accuracy ${(100 * info.knn_accuracy).toFixed(2)} %`),
    );
    this.canvas = el("canvas", { "data-run": index });
    this.legend = el("div", { class: "legend" });
    this.root = el("div", { class: "map", id: `map-${index}` }, head, this.canvas, this.legend);
    parent.append(this.root);
    const names = info.colour_names;
    if (names.length <= 40) {
      names.forEach((name, c) => {
        const item = el("span", { text: name });
        item.style.setProperty("--c", colourOf(c));
        this.legend.append(item);
      });
    } else {
      this.legend.append(`${names.length} ${info.colour_by}s`);
    }
    this.bindEvents();
  }

  async load() {
    const reply = await api(`/api/map?run=${this.index}`);
    const buffer = await reply.arrayBuffer();
    const n = this.info.map_count;
    this.x = new Float32Array(buffer, 0, n);
    this.y = new Float32Array(buffer, 4 * n, n);
    this.colour = new Uint16Array(buffer.slice(8 * n, 10 * n));
    let top = 0;
    for (let i = 0; i < n; i++) top = Math.max(top, this.colour[i]);
    this.rgba = new Uint32Array(top + 1);
    this.rgbaFaded = new Uint32Array(top + 1);
    for (let c = 0; c <= top; c++) {
      this.rgba[c] = packed(colourOf(c), 0.85);
      this.rgbaFaded[c] = packed(colourOf(c), 0.35);
    }
    this.fit();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.getBoundingClientRect();
    this.width = box.width;
    this.height = box.height;
    this.canvas.width = Math.round(box.width * ratio);
    this.canvas.height = Math.round(box.height * ratio);
    this.ratio = ratio;
  }

  fit() {
    this.resize();
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (let i = 0; i < this.x.length; i++) {
      x0 = Math.min(x0, this.x[i]); x1 = Math.max(x1, this.x[i]);
      y0 = Math.min(y0, this.y[i]); y1 = Math.max(y1, this.y[i]);
    }
    if (!isFinite(x0)) [x0, x1, y0, y1] = [0, 1, 0, 1];
    const span = Math.max(x1 - x0, y1 - y0, 1e-9);
    this.scale = (0.92 * Math.min(this.width, this.height)) / span;
    this.ox = this.width / 2 - this.scale * (x0 + x1) / 2;
    this.oy = this.height / 2 + this.scale * (y0 + y1) / 2; // y grows upwards on the map
    this.draw();
  }

  screenOf(i) {
    return [this.ox + this.scale * this.x[i], this.oy - this.scale * this.y[i]];
  }
  screenOfXY(x, y) {
    return [this.ox + this.scale * x, this.oy - this.scale * y];
  }

  draw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.drawNow();
    });
  }

  // Every point written straight into the canvas's pixels (a square of `size` CSS pixels in
  // its class colour, blended over white): no path or fillRect call per point, so 100,000
  // points draw in milliseconds without WebGL. Rings and lines go on top with the 2-D API.
  drawNow() {
    const ctx = this.canvas.getContext("2d");
    const w = this.canvas.width;
    const h = this.canvas.height;
    const n = this.x.length;
    const faded = this.highlight.selected >= 0 || this.highlight.query;
    const table = faded ? this.rgbaFaded : this.rgba;
    const size = Math.max(1, Math.round((n > 20000 ? 2 : n > 2000 ? 3 : 5) * this.ratio));
    const half = size >> 1;
    const image = ctx.createImageData(w, h);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(0xffffffff);
    const r = this.ratio;
    for (let i = 0; i < n; i++) {
      const px = Math.round((this.ox + this.scale * this.x[i]) * r) - half;
      const py = Math.round((this.oy - this.scale * this.y[i]) * r) - half;
      if (px + size <= 0 || py + size <= 0 || px >= w || py >= h) continue;
      const value = table[this.colour[i]];
      const x0 = Math.max(px, 0), x1 = Math.min(px + size, w);
      for (let y = Math.max(py, 0), y1 = Math.min(py + size, h); y < y1; y++) {
        pixels.fill(value, y * w + x0, y * w + x1);
      }
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.putImageData(image, 0, 0);
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.globalAlpha = 1;
    const ring = (sx, sy, r, colour, width) => {
      ctx.beginPath();
      ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      ctx.strokeStyle = colour;
      ctx.lineWidth = width;
      ctx.stroke();
    };
    const sel = this.highlight.selected;
    for (const nb of this.highlight.neighbours) {
      const [sx, sy] = this.screenOf(nb.pos);
      if (sel >= 0) {
        const [ax, ay] = this.screenOf(sel);
        ctx.beginPath();
        ctx.moveTo(ax, ay);
        ctx.lineTo(sx, sy);
        ctx.strokeStyle = nb.wrong ? "rgba(200,30,30,.6)" : "rgba(0,0,0,.35)";
        ctx.lineWidth = 1;
        ctx.stroke();
      }
      ring(sx, sy, 6, nb.wrong ? "#c0392b" : "#111", 2);
    }
    if (sel >= 0) {
      const [sx, sy] = this.screenOf(sel);
      ring(sx, sy, 9, "#000", 3);
      ring(sx, sy, 9, "#ffd400", 1.5);
    }
    if (this.highlight.query) {
      const [sx, sy] = this.screenOfXY(...this.highlight.query);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(sx - 10, sy); ctx.lineTo(sx + 10, sy);
      ctx.moveTo(sx, sy - 10); ctx.lineTo(sx, sy + 10);
      ctx.stroke();
      ring(sx, sy, 12, "#e6007e", 2.5);
    }
  }

  // The map point nearest to a screen position, within `radius` pixels, else -1. A linear
  // scan: 100,000 points take about a millisecond, below a frame.
  nearest(sx, sy, radius = 8) {
    const x = (sx - this.ox) / this.scale;
    const y = (this.oy - sy) / this.scale;
    const limit = (radius / this.scale) ** 2;
    let best = -1;
    let bestD = limit;
    for (let i = 0; i < this.x.length; i++) {
      const dx = this.x[i] - x;
      const dy = this.y[i] - y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) { bestD = d; best = i; }
    }
    return best;
  }

  bindEvents() {
    const c = this.canvas;
    let drag = null;
    const local = (e) => {
      const box = c.getBoundingClientRect();
      return [e.clientX - box.left, e.clientY - box.top];
    };
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [sx, sy] = local(e);
      const factor = Math.exp(-e.deltaY * 0.0015);
      const scale = Math.min(Math.max(this.scale * factor, 1e-6), 1e9);
      const applied = scale / this.scale;
      this.ox = sx - (sx - this.ox) * applied;
      this.oy = sy - (sy - this.oy) * applied;
      this.scale = scale;
      this.draw();
    }, { passive: false });
    c.addEventListener("mousedown", (e) => {
      const [sx, sy] = local(e);
      drag = { sx, sy, ox: this.ox, oy: this.oy, moved: false };
    });
    window.addEventListener("mouseup", () => { if (drag) setTimeout(() => (drag = null), 0); });
    c.addEventListener("mousemove", (e) => {
      const [sx, sy] = local(e);
      if (drag && e.buttons) {
        const dx = sx - drag.sx;
        const dy = sy - drag.sy;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        this.ox = drag.ox + dx;
        this.oy = drag.oy + dy;
        hideHover();
        this.draw();
        return;
      }
      const i = this.nearest(sx, sy);
      if (i < 0) hideHover();
      else showHover(this.index, this.info.map_start + i, e.clientX, e.clientY);
    });
    c.addEventListener("mouseleave", hideHover);
    c.addEventListener("click", (e) => {
      if (drag && drag.moved) return;
      const [sx, sy] = local(e);
      const i = this.nearest(sx, sy);
      if (i >= 0) select(this.index, { row: this.info.map_start + i });
    });
    c.addEventListener("dblclick", () => this.fit());
  }
}

// ------------------------------------------------------------------ hover card

let hoverKey = null;
let hoverTimer = null;

function hideHover() {
  hoverKey = null;
  clearTimeout(hoverTimer);
  document.getElementById("hover").hidden = true;
}

async function sampleOf(run, row) {
  const key = `${run}/${row}`;
  if (!state.samples.has(key)) {
    state.samples.set(key, api(`/api/sample?run=${run}&row=${row}`));
  }
  return state.samples.get(key);
}

function showHover(run, row, clientX, clientY) {
  const box = document.getElementById("hover");
  const key = `${run}/${row}`;
  const place = () => {
    box.style.left = `${Math.min(clientX + 16, window.innerWidth - 340)}px`;
    box.style.top = `${Math.min(clientY + 16, window.innerHeight - 200)}px`;
  };
  if (key === hoverKey) { place(); return; }
  hoverKey = key;
  clearTimeout(hoverTimer);
  hoverTimer = setTimeout(async () => {
    try {
      const sample = await sampleOf(run, row);
      if (hoverKey !== key) return;
      box.replaceChildren(...sampleCard(run, sample));
      box.dataset.row = row;
      box.dataset.run = run;
      place();
      box.hidden = false;
    } catch (err) {
      showError(err.message);
    }
  }, 40);
}

function sampleCard(run, s) {
  const parts = [];
  if (s.image) parts.push(el("img", { src: `/api/thumb?run=${run}&row=${s.row}`, alt: s.id }));
  parts.push(el("div", {}, el("b", { text: s.id }),
    s.label === null ? "" : ` · label ${s.label}`, ` · ${s.split}`));
  if (s.text) parts.push(el("p", { class: "text", text: s.text }));
  if (s.series) parts.push(sparkline(s.series, 300, 70));
  return parts;
}

function sparkline(channels, width, height) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "sparkline");
  const flat = channels.flat();
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const span = hi - lo || 1;
  channels.forEach((values, c) => {
    const points = values.map((v, i) =>
      `${(i / Math.max(values.length - 1, 1)) * (width - 4) + 2},${height - 2 - ((v - lo) / span) * (height - 4)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", PALETTE[c]);
    line.setAttribute("stroke-width", "1.2");
    svg.append(line);
  });
  return svg;
}

// ------------------------------------------------------------------ selection and neighbours

function k() {
  const value = parseInt(document.getElementById("k").value, 10);
  return Number.isFinite(value) ? Math.min(Math.max(value, 1), 100) : 10;
}

// Select a sample (by row in `run`, or by id) and fetch its neighbours in every run: in the
// other run the same sample is found by its id.
async function select(run, { row = null, id = null }) {
  clearError();
  const first = await api(`/api/neighbours?run=${run}&${row !== null ? `row=${row}` : `id=${encodeURIComponent(id)}`}&k=${k()}`)
    .catch((err) => ({ error: err.message }));
  if (first.error) { showError(first.error); return; }
  const sampleId = first.sample.id;
  state.selected = { run, row: first.sample.row, id: sampleId };
  state.neighbours = await Promise.all(state.runs.map((_, r) =>
    r === run ? first : api(`/api/neighbours?run=${r}&id=${encodeURIComponent(sampleId)}&k=${k()}`)
      .catch((err) => ({ error: err.message }))));
  state.maps.forEach((m, r) => {
    const reply = state.neighbours[r];
    m.highlight.query = null;
    m.highlight.selected = reply.error || reply.sample.pos === null ? -1 : reply.sample.pos;
    m.highlight.neighbours = reply.error ? [] : reply.neighbours.filter((nb) => nb.pos !== null);
    m.draw();
  });
  setTab("neighbours");
}

function sampleList(run, items, { onPick, showWrong = true, mark = null } = {}) {
  const list = el("ol", { class: "samples" });
  items.forEach((s, rank) => {
    const wrong = showWrong && s.wrong;
    const li = el("li", {
      class: wrong ? "wrong" : "",
      "data-id": s.id,
      "data-row": s.row,
      title: wrong ? "its label differs from the selected sample's" : "",
      onclick: () => (onPick ? onPick(s) : select(run, { row: s.row })),
    });
    li.append(el("span", { class: "rank", text: mark ?? `${rank + 1}` }));
    if (s.image) li.append(el("img", { class: "thumb", src: `/api/thumb?run=${run}&row=${s.row}`, alt: "" }));
    li.append(el("span", { class: "id" }, s.id, s.text && s.text !== s.id ? el("small", { text: s.text }) : null));
    if (s.label !== null) {
      li.append(el("span", { class: "label" }, s.label, wrong ? el("span", { class: "wrong-mark", text: " ✗" }) : null));
    }
    if (s.distance !== undefined) li.append(el("span", { class: "dist", text: s.distance.toFixed(4) }));
    list.append(li);
  });
  return list;
}

function runTitle(r) {
  return state.runs.length > 1 ? `${r === 0 ? "A" : "B"}: ${state.runs[r].name}` : state.runs[r].name;
}

function renderNeighbours(panel) {
  if (!state.selected) {
    panel.append(el("p", { class: "hint", text: "Click a point on the map to list its nearest neighbours." }));
    return;
  }
  panel.append(el("p", { class: "note", text:
    "Nearest samples by cosine distance (1 − cos) in the run's whole data (train and held-out), " +
    "the sample itself left out: what `selfsup search` lists for it. ✗: its label differs." }));
  state.neighbours.forEach((reply, r) => {
    const block = el("div", { class: "run-block", id: `neighbours-${r}` });
    block.append(el("h3", { text: runTitle(r) }));
    if (reply.error) {
      block.append(el("p", { class: "note", text: reply.error }));
    } else {
      const s = reply.sample;
      block.append(el("ol", { class: "samples selected" }, ...sampleList(r, [s], { showWrong: false, mark: "▶" }).children));
      block.append(sampleList(r, reply.neighbours));
    }
    panel.append(block);
  });
}

// ------------------------------------------------------------------ the query box

async function runQuery(event) {
  event.preventDefault();
  clearError();
  const file = document.getElementById("query-file").files[0];
  const text = document.getElementById("query-text").value;
  if (!file && !text.trim()) { showError("type a sentence or choose a file to search for"); return; }
  const bytes = file ? await file.arrayBuffer() : null;
  const ask = (r) => {
    const url = `/api/query?run=${r}&k=${k()}`;
    const options = file
      ? { method: "POST", body: bytes, headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) } }
      : { method: "POST", body: JSON.stringify({ text }), headers: { "Content-Type": "application/json" } };
    return api(url, options).catch((err) => ({ error: err.message }));
  };
  const replies = await Promise.all(state.runs.map((_, r) => ask(r)));
  state.queryResult = { what: file ? file.name : `“${text}”`, replies };
  const errors = replies.map((reply, r) => (reply.error ? (state.runs.length > 1 ? `${runTitle(r)}: ` : "") + reply.error : null)).filter(Boolean);
  if (errors.length) showError(errors.join("\n"));
  state.maps.forEach((m, r) => {
    const reply = replies[r];
    m.highlight.selected = -1;
    m.highlight.query = reply.error ? null : reply.xy;
    m.highlight.neighbours = reply.error ? [] : reply.neighbours.filter((nb) => nb.pos !== null);
    m.draw();
  });
  setTab("query");
}

function renderQuery(panel) {
  if (!state.queryResult) {
    panel.append(el("p", { class: "hint", text: "Type a sentence (text and CLIP runs) or choose a file (an image; a .npy or .wav series) above and press Search." }));
    return;
  }
  panel.append(el("p", { class: "note", text: `Nearest samples to ${state.queryResult.what}; the cross on the map is its place: the mean position of its 5 nearest mapped samples.` }));
  state.queryResult.replies.forEach((reply, r) => {
    const block = el("div", { class: "run-block", id: `query-${r}` });
    block.append(el("h3", { text: runTitle(r) }));
    if (reply.error) block.append(el("p", { class: "note error", text: reply.error }));
    else block.append(sampleList(r, reply.neighbours, { showWrong: false }));
    panel.append(block);
  });
}

// ------------------------------------------------------------------ data-cleaning panels

async function renderDuplicates(panel, run) {
  const input = el("input", { type: "number", step: "0.005", min: "0", value: state.threshold ?? "0.02", id: "threshold" });
  const body = el("div", { id: "duplicates" });
  const load = async () => {
    state.threshold = input.value;
    const reply = await api(`/api/duplicates?run=${run}&threshold=${encodeURIComponent(input.value)}`);
    body.replaceChildren(el("p", { class: "note", text:
      `${reply.total} pairs of samples at cosine distance under ${reply.threshold}` +
      (reply.total > reply.pairs.length ? ` (the ${reply.pairs.length} closest shown)` : "") +
      ", among each mapped sample's 10 nearest neighbours." }));
    for (const pair of reply.pairs) {
      const side = (s) => el("span", { class: "side" },
        s.image ? el("img", { class: "thumb", src: `/api/thumb?run=${run}&row=${s.row}`, alt: "" }) : "",
        ` ${s.id}${s.label !== null ? ` (${s.label})` : ""}`, s.text && s.text !== s.id ? el("small", { text: ` ${s.text}` }) : "");
      body.append(el("div", { class: "pair", onclick: () => select(run, { row: pair.a.row }) },
        side(pair.a), side(pair.b), el("span", { class: "dist", text: pair.distance.toFixed(4) })));
    }
  };
  input.addEventListener("change", () => load().catch((err) => showError(err.message)));
  panel.append(el("label", { class: "note" }, "distance under ", input));
  panel.append(body);
  await load();
}

async function renderOutliers(panel, run) {
  const reply = await api(`/api/outliers?run=${run}`);
  panel.append(el("p", { class: "note", text:
    `The mapped samples farthest (cosine distance) from their ${reply.k}-th nearest neighbour: the loneliest first.` }));
  panel.append(sampleList(run, reply.outliers, { showWrong: false }));
}

async function renderAccuracy(panel, run) {
  const reply = await api(`/api/accuracy?run=${run}`);
  if (!reply.available) {
    panel.append(el("p", { class: "note", text: `No per-class accuracy: ${reply.why}.` }));
    return;
  }
  panel.append(el("p", { class: "note", text:
    `The kNN protocol on the held-out samples (weighted vote of the k = ${reply.k} nearest training ` +
    `samples, temperature ${reply.temperature}; a tie counts as wrong): ${(100 * reply.overall).toFixed(2)} % overall.` }));
  const table = el("table", { class: "acc", id: "per-class" });
  table.append(el("tr", {}, el("th", { text: "class" }), el("th", { text: "samples" }),
    el("th", { text: "right" }), el("th", { text: "accuracy (%)" })));
  reply.classes.forEach((name, c) => {
    if (!reply.count[c]) return;
    table.append(el("tr", {}, el("td", { text: name }), el("td", { text: reply.count[c] }),
      el("td", { text: reply.correct[c] }), el("td", { text: (100 * reply.correct[c] / reply.count[c]).toFixed(1) })));
  });
  panel.append(table);
  panel.append(el("p", { class: "note", text: "Confusion matrix: a row is the true class, a column the predicted one." }));
  const matrix = el("table", { class: "acc", id: "confusion" });
  const shown = reply.classes.map((_, c) => c).filter((c) => reply.count[c] || reply.confusion.some((row) => row[c]));
  matrix.append(el("tr", {}, el("th", { text: "" }), ...shown.map((c) => el("th", { text: reply.classes[c] }))));
  for (const t of shown) {
    const total = reply.count[t] || 1;
    matrix.append(el("tr", {}, el("th", { text: reply.classes[t] }), ...shown.map((p) => {
      const value = reply.confusion[t][p];
      const cell = el("td", { text: value || "" });
      if (value) cell.style.background = `rgba(${t === p ? "43,108,176" : "192,57,43"},${(0.15 + 0.85 * value / total).toFixed(2)})`;
      return cell;
    })));
  }
  panel.append(matrix);
}

// ------------------------------------------------------------------ tabs

async function setTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  const panel = document.getElementById("panel");
  panel.replaceChildren();
  panel.dataset.tab = tab;
  try {
    if (tab === "neighbours") renderNeighbours(panel);
    else if (tab === "query") renderQuery(panel);
    else if (tab === "duplicates") await renderDuplicates(panel, state.panelRun);
    else if (tab === "outliers") await renderOutliers(panel, state.panelRun);
    else if (tab === "accuracy") await renderAccuracy(panel, state.panelRun);
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  try {
    state.runs = await api("/api/runs");
  } catch (err) {
    showError(`cannot reach the explorer's server: ${err.message}`);
    return;
  }
  document.getElementById("title").textContent = state.runs.map((r) => r.name).join(" | ");
  const runSelect = document.getElementById("panel-run");
  if (state.runs.length > 1) {
    runSelect.hidden = false;
    state.runs.forEach((r, i) => runSelect.append(el("option", { value: i, text: runTitle(i) })));
    runSelect.addEventListener("change", () => { state.panelRun = +runSelect.value; setTab(state.tab); });
  }
  // the sentence box stays open on image runs: a sentence there gets the server's message
  if (!state.runs.some((r) => r.query.text)) {
    document.getElementById("query-text").placeholder = "sentences: text and CLIP runs only";
  }
  const parent = document.getElementById("maps");
  state.maps = state.runs.map((info, r) => new MapView(r, info, parent));
  try {
    await Promise.all(state.maps.map((m) => m.load()));
  } catch (err) {
    showError(err.message);
    return;
  }
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => setTab(b.dataset.tab));
  document.getElementById("query-form").addEventListener("submit", runQuery);
  window.addEventListener("resize", () => state.maps.forEach((m) => m.fit()));
  document.body.dataset.ready = "1";
}

// What the browser tests (and a curious user's console) can read: each map's points on screen.
window.selfsupExplore = {
  state,
  screenOf: (run, pos) => state.maps[run].screenOf(pos),
};

start();
