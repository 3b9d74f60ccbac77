// Small helpers shared by the modules.
import { num, t, tOr } from './i18n.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

// Congestion levels of spec/api.md, in order, with the theme's colours and labels (in the UI language).
export const LEVELS = ['smooth', 'basically_smooth', 'light', 'moderate', 'severe'];
export const LEVEL_COLOR = { smooth: '#2bb673', basically_smooth: '#a3d65c', light: '#f6d04d', moderate: '#f7893b', severe: '#e5343b' };
export const LEVEL_LABEL = new Proxy({}, { get: (_, k) => (typeof k === 'string' ? t('level.' + k) : undefined) });

// levelOfTPI maps a TPI (0..10) to a level, as the engine does (2-point bands).
export function levelOfTPI(tpi) {
  if (tpi == null || Number.isNaN(tpi)) return null;
  return LEVELS[Math.max(0, Math.min(4, Math.floor(tpi / 2)))];
}

export { num, clock, ago } from './i18n.js';

export const titleCase = (s) => (s || '').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

// label names a code of the server (incident type, unit type, status, road class, …) in the UI language:
// t('<group>.<code>'), or the code in title case when the UI has no label for it.
export const label = (group, code) => tOr(group + '.' + code, titleCase(code));

// distanceM is the great-circle distance in metres.
export function distanceM(lat1, lng1, lat2, lng2) {
  const r = Math.PI / 180, a = Math.sin((lat2 - lat1) * r / 2) ** 2 +
    Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin((lng2 - lng1) * r / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
}

let toastBox = null;
export function toast(msg, kind = '') {
  toastBox ||= $('toasts');
  const t = el('div', { class: 'toast ' + kind, role: kind === 'err' ? 'alert' : 'status', text: msg });
  toastBox.append(t);
  setTimeout(() => t.remove(), kind === 'err' ? 7000 : 4000);
}

// confidenceText shows how much evidence a speed rests on (docs/congestion.md: evidence / (evidence + 1),
// evidence in vehicle-minutes of probes): a reading under LOW_CONFIDENCE (one vehicle-minute) is marked, so an
// officer does not act on one probe's minute as on a queue that many vehicles measured.
export const LOW_CONFIDENCE = 0.5;
export function confidenceText(c) {
  if (c == null) return '—';
  return `${num(c * 100)} %${c < LOW_CONFIDENCE ? t('f.confidence.low') : ''}`;
}
