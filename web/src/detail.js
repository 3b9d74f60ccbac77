// The detail panel: a cell, a road, a unit or a sensor, with the recent speed and flow as small charts.
// History is what this page has received since it opened (every delta of the cell), until the server offers
// a history endpoint.
import { $, el, num, clock, confidenceText, label, LEVEL_COLOR, LEVEL_LABEL } from './util.js';
import { t } from './i18n.js';

const HIST_MAX = 180;

export class History {
  constructor() { this.m = new Map(); }
  clear() { this.m.clear(); }
  add(c, t) {
    const ts = Date.parse(c.updated_at) || t;
    let h = this.m.get(c.cell);
    if (!h) { h = []; this.m.set(c.cell, h); }
    if (h.length && h[h.length - 1].t >= ts) return;
    h.push({ t: ts, speed: c.speed_kmh, flow: c.flow_vph, tpi: c.tpi, ff: c.free_flow_kmh, samples: c.samples });
    if (h.length > HIST_MAX) h.splice(0, h.length - HIST_MAX);
    if (this.m.size > 20000) this.m.delete(this.m.keys().next().value);
  }
  get(cell) { return this.m.get(cell) || []; }
}

// sparkline draws values over time as an SVG path; ref draws a dashed reference line (free flow).
function sparkline(points, key, { color = '#3ea6ff', ref = null, unit = '' } = {}) {
  const pts = points.filter((p) => p[key] != null && !Number.isNaN(p[key]));
  const wrap = el('div', { class: 'chart' });
  const last = pts.length ? pts[pts.length - 1][key] : null;
  wrap.append(el('h3', {}, el('span', { text: key === 'speed' ? t('f.speed') : t('f.flow') }), el('span', { text: last == null ? '' : `${num(last, key === 'flow' ? 0 : 1)} ${unit}` })));
  if (pts.length < 2) {
    wrap.append(el('div', { class: 'empty', text: pts.length ? t('chart.collecting') : (key === 'flow' ? t('chart.nodetector') : t('chart.nodata')) }));
    return wrap;
  }
  const W = 300, H = 70, P = 4;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
  let lo = Math.min(...pts.map((p) => p[key])), hi = Math.max(...pts.map((p) => p[key]));
  if (ref != null) { lo = Math.min(lo, ref); hi = Math.max(hi, ref); }
  lo = Math.min(lo, 0);
  if (hi - lo < 1e-6) hi = lo + 1;
  const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join('');
  const area = `${d}L${x(t1).toFixed(1)},${H - P}L${x(t0).toFixed(1)},${H - P}Z`;
  const svg = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${key === 'speed' ? t('f.speed') : t('f.flow')}">` +
    `<path d="${area}" fill="${color}" opacity=".15"/>` +
    (ref != null ? `<line x1="${P}" x2="${W - P}" y1="${y(ref)}" y2="${y(ref)}" stroke="#93a4b6" stroke-dasharray="4 4" stroke-width="1" vector-effect="non-scaling-stroke"/>` : '') +
    `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" vector-effect="non-scaling-stroke"/></svg>`;
  const box = el('div');
  box.innerHTML = svg;
  wrap.append(box.firstChild, el('div', { class: 'sub', style: 'padding:.2rem 0 0', text: `${clock(t0, false)} – ${clock(t1, false)}${ref != null ? t('chart.dashed_ff') : ''}` }));
  return wrap;
}

// roadName is a road's name in the UI language (name_zh / name_en when the network has them).
export function roadName(p) {
  const zh = document.documentElement.lang === 'zh-CN';
  return (zh ? p.name_zh : p.name_en) || p.name || p.name_zh || '';
}

function metric(label, value) { return el('div', {}, el('label', { text: label }), el('b', { text: value })); }

export class Detail extends EventTarget {
  constructor(history) {
    super();
    this.box = $('detail');
    this.history = history;
    this.cur = null;
  }

  close() {
    this.cur = null;
    this.box.hidden = true;
    this.dispatchEvent(new Event('close'));
  }

  head(title, level) {
    return el('div', { class: 'panel-head' },
      el('h2', { title, text: title }),
      level ? el('span', { class: 'lvl', style: `--lv:${LEVEL_COLOR[level]}`, text: LEVEL_LABEL[level] }) : null,
      el('button', { class: 'close', type: 'button', title: t('common.close_esc'), 'aria-label': t('common.close'), text: '×', onclick: () => this.close() }));
  }

  cellBody(c) {
    if (!c) return [el('div', { class: 'sub', style: 'padding-top:.7rem', text: t('detail.nodata') })];
    const h = this.history.get(c.cell);
    return [
      el('div', { class: 'metrics' },
        metric(t('f.speed'), t('unit.kmh_v', { v: num(c.speed_kmh, 1) })), metric(t('f.freeflow'), t('unit.kmh_v', { v: num(c.free_flow_kmh, 0) })),
        metric(t('kpi.tpi'), num(c.tpi, 1)), metric(t('f.congestion'), c.congestion == null ? '—' : `${num(c.congestion * 100)} %`),
        metric(t('f.flow'), c.flow_vph == null ? '—' : t('unit.vph_v', { v: num(c.flow_vph, 0) })), metric(t('f.occupancy'), c.occupancy == null ? '—' : `${num(c.occupancy * 100)} %`),
        metric(t('f.samples'), `${c.samples == null ? '—' : num(c.samples)}${c.low_samples ? t('f.samples.low') : ''}`), metric(t('f.confidence'), confidenceText(c.confidence)),
        metric(t('f.incident_score'), num(c.incident_score, 2))),
      sparkline(h, 'speed', { color: '#3ea6ff', ref: c.free_flow_kmh, unit: t('unit.kmh') }),
      sparkline(h, 'flow', { color: '#a78bfa', unit: t('unit.vph') }),
      el('div', { class: 'sub', text: t('detail.cell_sub', { cell: c.cell, t: clock(c.updated_at), src: c.free_flow_source ? label('ffsrc', c.free_flow_source) : '—' }) }),
    ];
  }

  showCell(c, id) {
    this.cur = { kind: 'cell', id };
    this.box.replaceChildren(this.head(t('detail.cell', { id }), c?.level), ...this.cellBody(c));
    this.box.hidden = false;
  }

  showRoad(props, c, link) {
    this.cur = { kind: 'road', id: props.id, props };
    const title = roadName(props) || t('detail.road', { id: props.id });
    const lvl = link?.speed_kmh != null ? link.level : (c?.speed_kmh != null ? c.level : null);
    this.box.replaceChildren(this.head(title, lvl),
      el('div', { class: 'metrics' },
        metric(t('f.class'), label('class', props.class)), metric(t('f.lanes'), props.lanes ?? '—'),
        metric(t('f.limit'), props.speed_limit_kmh ? t('unit.kmh_v', { v: num(props.speed_limit_kmh) }) : '—'), metric(t('f.link'), props.id)),
      link ? el('div', { class: 'metrics' },
        metric(t('f.link_speed'), t('unit.kmh_v', { v: num(link.speed_kmh, 1) })), metric(t('f.freeflow'), t('unit.kmh_v', { v: num(link.free_flow_kmh, 0) })),
        metric(t('f.link_tpi'), num(link.tpi, 1)), metric(t('f.link_flow'), link.flow_vph == null ? '—' : t('unit.vph_v', { v: num(link.flow_vph, 0) })),
        metric(t('f.samples'), link.samples == null ? '—' : num(link.samples)), metric(t('f.confidence'), confidenceText(link.confidence)),
        metric(t('f.updated'), clock(link.updated_at))) : null,
      el('div', { class: 'sub', text: t('detail.road_cell') }),
      ...this.cellBody(c));
    this.box.hidden = false;
  }

  showThing(title, rows, pick) {
    this.cur = { kind: 'thing', id: title, pick };
    this.box.replaceChildren(this.head(title), el('div', { class: 'metrics' }, rows.map(([k, v]) => metric(k, v))));
    this.box.hidden = false;
  }
}
