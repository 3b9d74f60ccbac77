// History at a glance (docs/command-center.md "History"): GET /api/v1/history answers from the server's store
// of the engine's minute aggregates (and the event log for older ranges).
// - Sparklines: the last two hours of network TPI, speed and incidents under the top bar's KPIs.
// - The history panel (button "History", key H): a chart of the last 24 hours (or 6 h, 1 h) of TPI (or speed, incidents, events) for the
//   city, for a district (H3 resolution-7 areas named after their main road, listed with their own small
//   charts), or for an area drawn on the map (drag a rectangle).
import { api } from './api.js';
import { roadName } from './detail.js';
import { clock, dateTime, num, t } from './i18n.js';
import { $, LEVELS, LEVEL_COLOR, el, toast } from './util.js';

const METRICS = ['tpi', 'speed', 'incidents', 'events'];
const DISTRICT_RES = 7;

// path draws points [[t, v], …] into a W×H box; null values break the line. Returns {d, area, x, y}.
function path(points, W, H, P, { lo, hi, t0, t1 }, x0 = 0) {
  const x = (tt) => x0 + P + ((tt - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P - ((v - lo) / Math.max(1e-9, hi - lo)) * (H - 2 * P);
  let d = '', pen = false;
  for (const [tt, v] of points) {
    if (v == null) { pen = false; continue; }
    d += `${pen ? 'L' : 'M'}${x(tt).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return { d, x, y };
}

function range(points, metric) {
  const vs = points.map((p) => p[1]).filter((v) => v != null);
  let lo = 0, hi = vs.length ? Math.max(...vs) : 1;
  if (metric === 'tpi') hi = Math.max(hi, 4);
  if (metric === 'speed') hi = Math.max(hi, 20);
  if (hi - lo < 1) hi = lo + 1;
  return { lo, hi: hi * 1.08 };
}

const toPoints = (series) => (series?.points || []).map(([tt, v]) => [Date.parse(tt), v]);

function unitOf(metric) {
  return metric === 'speed' ? t('unit.kmh') : metric === 'tpi' ? '' : '';
}

// Sparklines fills the KPIs' small charts from the server's history.
export class Sparklines {
  constructor() { this.data = {}; }

  async load() {
    await Promise.all([['kpi-tpi', 'tpi'], ['kpi-speed', 'speed'], ['kpi-incidents', 'incidents']].map(async ([id, metric]) => {
      try {
        const h = await api(`/api/v1/history?metric=${metric}&from=-2h&step=5m`);
        this.data[id] = { metric, h };
      } catch { /* no history on this server */ }
    }));
    this.draw();
  }

  // The sparklines span the last 2 h of event time; a server replaying an old day answers with its own
  // clock, so the range comes back from "to" when the server set it.
  draw() {
    for (const [id, { metric, h }] of Object.entries(this.data)) {
      const svg = document.querySelector(`#${id} svg.spark`);
      if (!svg) continue;
      const pts = toPoints(h.series?.[0]);
      const W = 80, H = 18;
      const r = range(pts, metric);
      const { d } = path(pts, W, H, 1, { ...r, t0: Date.parse(h.from), t1: Date.parse(h.to) });
      svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.innerHTML = d ? `<path d="${d}" fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke"/>` : '';
      svg.dataset.points = String(pts.filter((p) => p[1] != null).length);
      svg.parentElement.title = `${t('kpi.' + (metric === 'tpi' ? 'tpi.tip' : metric === 'speed' ? 'speed.tip' : 'incidents.tip'))} — ${t('hist.spark_tip')}`;
    }
  }
}

// HistoryPanel is the 24-hour chart panel.
export class HistoryPanel {
  constructor(cityMap, ctx) {
    this.cm = cityMap;
    this.ctx = ctx;
    this.box = $('history');
    this.metric = localStorage.getItem('cb_hist_metric') || 'tpi';
    this.hours = Number(localStorage.getItem('cb_hist_hours')) || 24;
    this.area = { kind: 'city' }; // city | district {key, name} | drawn {bbox}
    this.data = null;
    this.districts = null;
  }

  toggle() { if (this.box.hidden) this.open(); else this.close(); }

  open() {
    this.box.hidden = false;
    this.render();
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => { if (!this.box.hidden && !this.drawing) this.load(true); }, 60_000);
  }

  close() {
    this.box.hidden = true;
    clearInterval(this.timer);
    this.cancelDraw();
    this.showArea(null);
  }

  relabel() { if (!this.box.hidden) this.render(); }

  query(extra = '') {
    let q = `/api/v1/history?metric=${this.metric}&from=-${this.hours}h`;
    if (this.area.kind === 'district') q += `&cells=${this.area.key}`;
    if (this.area.kind === 'drawn') q += `&bbox=${this.area.bbox.map((v) => v.toFixed(5)).join(',')}`;
    return q + extra;
  }

  // load fetches the chart and the districts; a background refresh (every minute) redraws only when the
  // answer changed, so what the operator is pointing at is not replaced under the mouse.
  async load(background = false) {
    const gen = (this.gen = (this.gen || 0) + 1);
    this.loading = true;
    if (!background) this.render();
    let changed = true;
    try {
      const [main, districts] = await Promise.all([api(this.query()), api(`/api/v1/history?metric=${this.metric}&from=-${this.hours}h&res=${DISTRICT_RES}`)]);
      if (gen !== this.gen) return;
      const key = JSON.stringify([main.series, districts.series]);
      changed = key !== this.key || !background;
      this.key = key;
      this.data = main;
      this.districts = districts;
      this.error = null;
    } catch (e) {
      if (gen !== this.gen) return;
      this.error = e.status === 404 ? t('hist.none') : e.message;
    }
    this.loading = false;
    if (changed) this.render();
  }

  setMetric(m) {
    this.metric = m;
    localStorage.setItem('cb_hist_metric', m);
    this.load();
  }

  setHours(h) {
    this.hours = h;
    localStorage.setItem('cb_hist_hours', String(h));
    this.load();
  }

  setArea(a) {
    this.area = a;
    this.showArea(a.kind === 'drawn' ? a.bbox : a.kind === 'district' ? a.bounds : null);
    this.load();
  }

  areaTitle() {
    if (this.area.kind === 'district') return t('hist.district', { name: this.area.name });
    if (this.area.kind === 'drawn') return t('hist.drawn');
    return t('hist.city');
  }

  render() {
    if (this.box.hidden) return;
    const head = el('div', { class: 'panel-head' }, el('h2', { text: t('hist.title', { h: this.hours }) }),
      el('button', { class: 'close', type: 'button', title: t('common.close_esc'), 'aria-label': t('common.close'), text: '×', onclick: () => this.close() }));
    const metricSel = el('select', { id: 'hist-metric', 'aria-label': t('hist.metric'), onchange: (e) => this.setMetric(e.target.value) },
      METRICS.map((m) => el('option', { value: m, selected: m === this.metric, text: t('hist.m.' + m) })));
    const areaBtns = el('div', { class: 'hist-area' },
      el('button', { type: 'button', id: 'hist-city', class: this.area.kind === 'city' ? 'on' : '', text: t('hist.city'), onclick: () => this.setArea({ kind: 'city' }) }),
      el('button', { type: 'button', id: 'hist-draw', class: this.drawing || this.area.kind === 'drawn' ? 'on' : '', title: t('hist.draw.tip'),
        text: this.drawing ? t('hist.drawing') : t('hist.draw'), onclick: () => this.startDraw() }));
    const chart = this.chart();
    const list = this.districtList();
    const hoursSel = el('select', { id: 'hist-hours', 'aria-label': t('hist.range'), onchange: (e) => this.setHours(Number(e.target.value)) },
      [1, 6, 24].map((h) => el('option', { value: String(h), selected: h === this.hours, text: t('hist.hours', { h }) })));
    this.box.replaceChildren(head, el('div', { class: 'hist-ctl' }, metricSel, hoursSel, areaBtns), el('h3', { class: 'hist-sub', text: this.areaTitle() }), chart, list);
  }

  chart() {
    const wrap = el('div', { class: 'hist-chart-wrap' });
    if (this.error) { wrap.append(el('div', { class: 'empty', text: this.error })); return wrap; }
    if (!this.data) { wrap.append(el('div', { class: 'empty', text: t('common.loading') })); return wrap; }
    const s = this.data.series?.[0];
    const pts = toPoints(s);
    const t0 = Date.parse(this.data.from), t1 = Date.parse(this.data.to);
    const W = 560, H = 170, P = 6, L = 34, B = 18;
    const r = range(pts, this.metric);
    const inner = path(pts, W - L, H - B, P, { ...r, t0, t1 }, L);
    const x = inner.x, y = inner.y;
    let bands = '';
    if (this.metric === 'tpi') {
      LEVELS.forEach((lv, i) => {
        const a = Math.min(r.hi, i * 2), b = Math.min(r.hi, i * 2 + 2);
        if (a >= r.hi) return;
        bands += `<rect x="${L}" width="${W - L - P}" y="${y(b).toFixed(1)}" height="${(y(a) - y(b)).toFixed(1)}" fill="${LEVEL_COLOR[lv]}" opacity=".07"/>`;
      });
    }
    let grid = '';
    for (let k = 0; k <= 4; k++) {
      const v = r.lo + ((r.hi - r.lo) * k) / 4;
      grid += `<line x1="${L}" x2="${W - P}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#223040" stroke-width="1"/>` +
        `<text x="${L - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end">${num(v, this.metric === 'tpi' ? 1 : 0)}</text>`;
    }
    const tickEvery = t1 - t0 > 12 * 3600_000 ? 3 * 3600_000 : t1 - t0 > 3 * 3600_000 ? 3600_000 : 15 * 60_000;
    for (let tt = Math.ceil(t0 / tickEvery) * tickEvery; tt <= t1; tt += tickEvery) {
      grid += `<line x1="${x(tt).toFixed(1)}" x2="${x(tt).toFixed(1)}" y1="${P}" y2="${H - B - P}" stroke="#1a2633" stroke-width="1"/>` +
        `<text x="${x(tt).toFixed(1)}" y="${H - 4}" text-anchor="middle">${clock(tt, false)}</text>`;
    }
    const d = inner.d;
    const color = this.metric === 'tpi' ? '#f6d04d' : this.metric === 'speed' ? '#3ea6ff' : this.metric === 'incidents' ? '#ef4444' : '#a78bfa';
    const n = pts.filter((p) => p[1] != null).length;
    const svg = `<svg class="hist-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${t('hist.m.' + this.metric)}" data-points="${n}" data-metric="${this.metric}">` +
      bands + grid + `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" vector-effect="non-scaling-stroke"/></svg>`;
    const box = el('div');
    box.innerHTML = svg;
    wrap.append(box.firstChild);
    const last = [...pts].reverse().find((p) => p[1] != null);
    const missing = (this.data.missing || []).reduce((a, [f, to]) => a + (Date.parse(to) - Date.parse(f)), 0);
    // (The minute in progress is not "missing": the server leaves it out of the list.)
    wrap.append(el('div', { class: 'sub' },
      el('span', { text: `${dateTime(t0)} – ${clock(t1, false)} · ${t('hist.step', { m: num(this.data.step_s / 60) })}` }),
      last ? el('span', { text: ` · ${t('hist.last')} ${num(last[1], this.metric === 'tpi' ? 2 : this.metric === 'speed' ? 1 : 0)} ${unitOf(this.metric)}` }) : null,
      n ? null : el('span', { text: ` · ${t('hist.empty')}` }),
      missing > 0 && n ? el('span', { class: 'muted', text: ` · ${t('hist.missing', { h: num(missing / 3600_000, 1) })}` }) : null));
    return wrap;
  }

  districtList() {
    const d = (this.districts?.series || []).filter((s) => s.points.some((p) => p[1] != null));
    if (!d.length) return el('div');
    const rows = d.slice(0, 12).map((s) => {
      const pts = toPoints(s);
      const r = range(pts, this.metric);
      const p = path(pts, 90, 18, 1, { ...r, t0: Date.parse(this.districts.from), t1: Date.parse(this.districts.to) });
      const last = [...pts].reverse().find((q) => q[1] != null);
      const name = roadName(s) ? t('hist.around', { road: roadName(s) }) : s.key;
      const spark = el('span', { class: 'mini' });
      spark.innerHTML = `<svg viewBox="0 0 90 18" preserveAspectRatio="none"><path d="${p.d}" fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>`;
      return el('li', { class: this.area.key === s.key ? 'sel' : '', 'data-key': s.key, title: s.key,
        onclick: () => this.setArea({ kind: 'district', key: s.key, name, bounds: this.cellBounds(s) }) },
      el('span', { class: 'nm', text: name }), spark, el('b', { text: last ? num(last[1], this.metric === 'tpi' ? 1 : 0) : '—' }));
    });
    return el('div', { class: 'hist-districts' }, el('h3', { text: t('hist.districts') }), el('ol', {}, rows));
  }

  // cellBounds approximates a resolution-7 cell by a box around its centre (edge ≈ 1.2 km).
  cellBounds(s) {
    const dLat = 1.3 / 111, dLng = dLat / Math.cos((s.lat * Math.PI) / 180);
    return [s.lng - dLng, s.lat - dLat, s.lng + dLng, s.lat + dLat];
  }

  // ---------- drawing an area ----------
  startDraw() {
    if (this.drawing) { this.cancelDraw(); this.render(); return; }
    const m = this.cm.map;
    this.drawing = true;
    this.render();
    toast(t('hist.draw.toast'), 'ok');
    m.dragPan.disable();
    m.boxZoom.disable();
    m.getCanvas().style.cursor = 'crosshair';
    let start = null;
    const down = (e) => { start = e.lngLat; };
    const move = (e) => { if (start) this.showArea([Math.min(start.lng, e.lngLat.lng), Math.min(start.lat, e.lngLat.lat), Math.max(start.lng, e.lngLat.lng), Math.max(start.lat, e.lngLat.lat)]); };
    const up = (e) => {
      if (!start) return;
      const b = [Math.min(start.lng, e.lngLat.lng), Math.min(start.lat, e.lngLat.lat), Math.max(start.lng, e.lngLat.lng), Math.max(start.lat, e.lngLat.lat)];
      start = null;
      this.cancelDraw();
      if (b[2] - b[0] < 1e-5 || b[3] - b[1] < 1e-5) { this.render(); return; }
      this.setArea({ kind: 'drawn', bbox: b });
    };
    m.on('mousedown', down); m.on('mousemove', move); m.on('mouseup', up);
    this.undraw = () => { m.off('mousedown', down); m.off('mousemove', move); m.off('mouseup', up); };
  }

  cancelDraw() {
    if (!this.drawing) return;
    this.drawing = false;
    this.undraw?.();
    const m = this.cm.map;
    m.dragPan.enable();
    m.boxZoom.enable();
    m.getCanvas().style.cursor = '';
  }

  // showArea outlines the chosen area on the map (null hides it).
  showArea(b) {
    const m = this.cm.map;
    if (!this.cm.loaded) return;
    const fc = { type: 'FeatureCollection', features: b ? [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon',
      coordinates: [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]] } }] : [] };
    if (!m.getSource('hist-area')) {
      m.addSource('hist-area', { type: 'geojson', data: fc });
      m.addLayer({ id: 'hist-area-fill', type: 'fill', source: 'hist-area', paint: { 'fill-color': '#3ea6ff', 'fill-opacity': 0.08 } });
      m.addLayer({ id: 'hist-area-line', type: 'line', source: 'hist-area', paint: { 'line-color': '#3ea6ff', 'line-width': 2, 'line-dasharray': [2, 1] } });
    } else m.getSource('hist-area').setData(fc);
  }
}
