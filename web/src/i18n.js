// The command center's languages (docs/command-center.md "Languages"): every label, tooltip, keyboard help and
// error message goes through t(key, params); numbers, times and dates through the Intl formatters below, in the
// city's time zone (GET /api/v1/status "timezone"; the demo city runs on Asia/Shanghai time).
//
// Adding a label: put the key in EN and ZH (strings.js), then use t('key') in code or data-i18n="key" (text),
// data-i18n-title="key" (tooltip), data-i18n-aria="key" (aria-label), data-i18n-placeholder="key" in HTML.
// A key missing from ZH falls back to EN; a key missing from both shows the key itself (and warns once).
//
// The language is chosen per user and remembered in this browser: localStorage cb_lang:<user name> once signed
// in, cb_lang for the login screen (the last language used here); the first visit follows the browser.
import { EN, ZH } from './strings.js';

export const LANGS = [{ code: 'en', name: 'EN' }, { code: 'zh-CN', name: '中文' }];
const DICT = { en: EN, 'zh-CN': ZH };

const norm = (l) => (l && /^zh/i.test(l) ? 'zh-CN' : l && /^en/i.test(l) ? 'en' : null);

let lang = norm(localStorage.getItem('cb_lang')) || norm(navigator.language) || 'en';
let user = '';
let tz; // the city's IANA time zone; undefined: the browser's
const warned = new Set();
const listeners = new Set();

export const getLang = () => lang;
export const getTimeZone = () => tz;

// t returns the label for key in the current language, with {name} placeholders filled from params. A value
// may be a function of params (plurals).
export function t(key, params) {
  let v = DICT[lang][key] ?? EN[key];
  if (v === undefined) {
    if (!warned.has(key)) { warned.add(key); console.warn(`i18n: no label for "${key}"`); }
    return key;
  }
  if (typeof v === 'function') v = v(params || {});
  if (params) v = v.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
  return v;
}

// has reports whether key has a label (for optional labels such as incident types the server may extend).
export const has = (key) => EN[key] !== undefined;

// tOr returns t(key) when it exists, else the fallback (an unknown code from the server shown as it is).
export const tOr = (key, fallback, params) => (has(key) ? t(key, params) : fallback);

// setUser switches to the language remembered for this user (if any) and remembers the current one otherwise.
export function setUser(name) {
  user = name || '';
  const saved = user && norm(localStorage.getItem('cb_lang:' + user));
  if (saved && saved !== lang) setLang(saved);
  else if (user) localStorage.setItem('cb_lang:' + user, lang);
}

// setLang changes the language, remembers it (for the user and for this browser) and re-labels the page.
export function setLang(l) {
  const n = norm(l);
  if (!n) return;
  localStorage.setItem('cb_lang', n);
  if (user) localStorage.setItem('cb_lang:' + user, n);
  if (n === lang) return;
  lang = n;
  fmtCache.clear();
  apply(document);
  for (const f of listeners) f(lang);
}

export function setTimeZone(zone) {
  if (!zone || zone === tz) return;
  try { new Intl.DateTimeFormat('en', { timeZone: zone }); } catch { return; } // unknown to this browser
  tz = zone;
  fmtCache.clear();
  for (const f of listeners) f(lang);
}

// onChange calls f(lang) after the language or the time zone changed.
export function onChange(f) { listeners.add(f); return () => listeners.delete(f); }

// apply labels the static HTML under root (data-i18n* attributes).
export function apply(root = document) {
  document.documentElement.lang = lang;
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll('[data-i18n-title]')) e.title = t(e.dataset.i18nTitle);
  for (const e of root.querySelectorAll('[data-i18n-aria]')) e.setAttribute('aria-label', t(e.dataset.i18nAria));
  for (const e of root.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
  for (const e of root.querySelectorAll('[data-i18n-empty]')) e.dataset.empty = t(e.dataset.i18nEmpty);
  document.title = t('app.title');
}

// ---------- numbers, times ----------
const fmtCache = new Map();
function fmt(kind, opts) {
  const k = kind + JSON.stringify(opts);
  let f = fmtCache.get(k);
  if (!f) {
    f = kind === 'n' ? new Intl.NumberFormat(lang, opts) : new Intl.DateTimeFormat(lang, { timeZone: tz, ...opts });
    fmtCache.set(k, f);
  }
  return f;
}

// num formats x with d decimals as the language writes numbers; null/NaN is a dash.
export function num(x, d = 0) {
  if (x == null || Number.isNaN(Number(x))) return '—';
  return fmt('n', { minimumFractionDigits: d, maximumFractionDigits: d }).format(Number(x));
}

const toDate = (t) => (t instanceof Date ? t : new Date(typeof t === 'string' && /^\d+$/.test(t) ? Number(t) : t));

// clock formats an instant as a time of day in the city's time zone (24 h).
export function clock(t, withSeconds = true) {
  if (!t) return '—';
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return '—';
  return fmt('d', { hour: '2-digit', minute: '2-digit', second: withSeconds ? '2-digit' : undefined, hourCycle: 'h23' }).format(d);
}

// dateTime formats an instant with its date (and the zone's short name when zone is true).
export function dateTime(t, { seconds = false, zone = false } = {}) {
  if (!t) return '—';
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return '—';
  return fmt('d', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: seconds ? '2-digit' : undefined, hourCycle: 'h23', timeZoneName: zone ? 'short' : undefined }).format(d);
}

// zoneName is the short name of the city's time zone at instant t ("GMT+8").
export function zoneName(t = Date.now()) {
  const p = fmt('d', { timeZoneName: 'short', hour: '2-digit' }).formatToParts(toDate(t));
  return p.find((x) => x.type === 'timeZoneName')?.value || '';
}

// zoneOffsetMs is the offset of the city's time zone from UTC at instant t (for datetime-local inputs).
export function zoneOffsetMs(t = Date.now()) {
  const p = Object.fromEntries(fmt('d', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: '2-digit', hourCycle: 'h23' }).formatToParts(toDate(t)).map((x) => [x.type, x.value]));
  const asUTC = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUTC - Math.floor(toDate(t).getTime() / 1000) * 1000;
}

// ago says how long ago ms milliseconds were.
export function ago(ms) {
  if (ms == null || Number.isNaN(ms)) return '';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t('ago.s', { n: s });
  if (s < 3600) return t('ago.min', { n: Math.floor(s / 60) });
  return t('ago.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

// duration formats seconds as "42 s" / "3 min 05 s".
export function duration(s) {
  if (s == null || Number.isNaN(s)) return '—';
  s = Math.max(0, Math.round(s));
  return s < 60 ? t('dur.s', { s }) : t('dur.min_s', { m: Math.floor(s / 60), s: String(s % 60).padStart(2, '0') });
}

// distance formats metres as "850 m" / "1.2 km".
export const distance = (m) => (m == null ? '—' : m < 1000 ? t('unit.m', { v: num(m, 0) }) : t('unit.km', { v: num(m / 1000, 1) }));
