// CityBrain command center: login, then the live map (cells, roads, incidents, units, sensors, transit), the
// incident queue, the detail panel, city KPIs, the connection indicator and, when the server runs a replay
// session, the time bar. See docs/command-center.md.
import { api, can, clearToken, session, setToken, signOut, whoami } from './api.js';
import { Detail, History } from './detail.js';
import { DispatchPanel } from './dispatch.js';
import { Replay } from './replay.js';
import { IntersectionView } from './signals.js';
import { UNIT_STATUS_COLOR, incidentIconURL, sensorIconURL, unitIconURL } from './icons.js';
import { Live } from './live.js';
import { CityMap, LAYERS } from './map.js';
import { Queue } from './queue.js';
import { $, LEVELS, LEVEL_COLOR, LEVEL_LABEL, clock, distanceM, el, label, levelOfTPI, num, titleCase, toast } from './util.js';
import { LANGS, apply as applyI18n, getLang, onChange as onLangChange, setLang, setTimeZone, setUser, t } from './i18n.js';
import { HistoryPanel, Sparklines } from './history.js';
import { ZonesPanel } from './zones.js';

const state = {
  cells: new Map(), res: 9, baseRes: 9, window: localStorage.getItem('cb_window') || '300s',
  units: new Map(), transit: new Map(), sensors: new Map(), features: new Set(), status: null, eventNow: 0,
  layers: JSON.parse(localStorage.getItem('cb_layers') || '{}'),
};
let cityMap, live, queue, detail, cityMap_roadsHook, dispatcher, intersections, replay, historyPanel, sparks, zonesPanel;
const history = new History();

// ---------- login ----------
async function boot() {
  if (new URLSearchParams(location.search).has('wall')) document.documentElement.classList.add('wall');
  if (new URLSearchParams(location.search).get('lang')) setLang(new URLSearchParams(location.search).get('lang'));
  fillLangSelects();
  applyI18n(document);
  let who;
  try {
    who = await whoami();
  } catch (e) {
    showLogin(t('err.unreachable', { msg: e.message }));
    return;
  }
  if (session.token && !who.authenticated) {
    clearToken();
    showLogin(t('err.session_invalid'), who);
    return;
  }
  if (who.auth_configured && !who.authenticated) { showLogin('', who); return; }
  session.who = who;
  startApp();
}

// The language menus (top bar and login screen); the choice is remembered for the signed-in user.
function fillLangSelects() {
  for (const id of ['lang', 'login-lang']) {
    const s = $(id);
    if (!s) continue;
    s.replaceChildren(...LANGS.map((l) => el('option', { value: l.code, text: l.name })));
    s.value = getLang();
    s.onchange = (e) => setLang(e.target.value);
  }
}
onLangChange(() => {
  for (const id of ['lang', 'login-lang']) if ($(id)) $(id).value = getLang();
  relabel();
});

// relabel redraws what the JS wrote (the static HTML is relabelled by i18n.apply).
function relabel() {
  $('replay-note').textContent = t('replay.note', { zone: zoneLabel() });
  if (!queue) return;
  showUser();
  $('layer-list').replaceChildren();
  buildLayerPanel();
  $('legend').replaceChildren();
  buildLegend();
  queue.nodes?.clear();
  queue.list.replaceChildren();
  queue.render();
  dispatcher.render();
  replay.relabel();
  showConn({ state: live.state });
  updateKPIs();
  cityMap.relabel();
  historyPanel.relabel();
  zonesPanel?.relabel();
  sparks.draw();
  if (detail.cur && !detail.box.hidden) {
    if (detail.cur.kind === 'intersection') intersections.render();
    else refreshDetail(true);
  }
}

function zoneLabel() { return state.status?.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone; }

function showLogin(msg, who) {
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !msg;
  $('login-error').textContent = msg || '';
  $('login-guest').hidden = !(who && !who.auth_configured);
  $('login-token').focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const tok = $('login-token').value.trim();
  if (!tok) return;
  $('login-submit').disabled = true;
  try {
    const who = await whoami(tok);
    if (!who.authenticated) {
      $('login-error').hidden = false;
      $('login-error').textContent = t('err.token_unknown');
      return;
    }
    setToken(tok);
    session.who = who;
    $('login-token').value = '';
    $('login').hidden = true;
    if (live) location.reload(); else startApp(); // a running app reconnects with the new identity
  } catch (err) {
    $('login-error').hidden = false;
    $('login-error').textContent = t('err.signin', { msg: err.message });
  } finally {
    $('login-submit').disabled = false;
  }
});
$('login-guest').addEventListener('click', async () => {
  session.who = await whoami('');
  $('login').hidden = true;
  if (!live) startApp();
});
$('logout').addEventListener('click', () => { live?.stop(); signOut(); });
$('signin').addEventListener('click', () => showLogin('', { auth_configured: false }));

function showUser() {
  const w = session.who || {};
  $('user-name').textContent = w.authenticated ? w.name : t('user.anon');
  $('user-role').textContent = w.authenticated ? label('role', w.role) : t('user.readonly');
  $('user-role').dataset.role = w.authenticated ? w.role : '';
  $('logout').hidden = !w.authenticated;
  $('signin').hidden = !!w.authenticated;
}

// ---------- app ----------
function startApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  setUser(session.who?.authenticated ? session.who.name : '');
  showUser();
  $('replay-note').textContent = t('replay.note', { zone: zoneLabel() });
  $('window').value = state.window;
  detail = new Detail(history);
  detail.addEventListener('close', () => cityMap.select(null));
  intersections = new IntersectionView(detail);
  queue = new Queue();
  queue.canDispatch = () => [...state.units.values()].some((u) => u.status === 'available');
  cityMap_roadsHook = () => cityMap.loadLinks(state.window);
  cityMap = new CityMap('map', { onLoad: () => { applyLayerToggles(); updatePoints(); } });
  cityMap.addEventListener('viewport', () => resubscribe());
  cityMap.addEventListener('pick', (e) => onPick(e.detail));
  cityMap.addEventListener('roads', () => cityMap_roadsHook());
  cityMap.addEventListener('error', (e) => console.warn(e.detail));
  cityMap.fitNetwork();
  dispatcher = new DispatchPanel(cityMap);
  dispatcher.addEventListener('dispatched', () => pollUnits());
  dispatcher.start();
  buildLayerPanel();
  buildLegend();

  queue.addEventListener('change', (e) => {
    updateIncidentsOnMap(e.detail);
    updateKPIs();
    if (dispatcher.inc && !queue.selected) dispatcher.show(null);
    else if (dispatcher.inc && queue.items.get(dispatcher.inc.id)) { dispatcher.inc = queue.items.get(dispatcher.inc.id); }
  });
  queue.addEventListener('select', (e) => {
    const inc = e.detail.incident;
    dispatcher.show(inc || null);
    if (!inc) return;
    cityMap.select('incident', inc.id);
    if (e.detail.locate) cityMap.flyTo(inc.lng, inc.lat, 15);
  });
  queue.addEventListener('dispatch', (e) => dispatcher.send(e.detail));
  queue.start();

  live = new Live();
  live.addEventListener('state', (e) => showConn(e.detail));
  live.addEventListener('hello', (e) => { state.baseRes = e.detail.base_res ?? 9; resubscribe(true); });
  live.addEventListener('snapshot', (e) => applyCells(e.detail, true));
  live.addEventListener('delta', (e) => applyCells(e.detail, false));
  live.addEventListener('servererror', (e) => console.warn('server:', e.detail));
  live.start();

  replay = new Replay(live);
  replay.eventNow = () => state.eventNow;
  replay.addEventListener('enter', () => enterTimeline(true));
  replay.addEventListener('exit', () => enterTimeline(false));
  replay.allow();

  historyPanel = new HistoryPanel(cityMap, () => ({ replaying: state.replaying && replay?.own ? replay.id : null }));
  sparks = new Sparklines();
  $('hist-open').addEventListener('click', () => historyPanel.toggle());
  zonesPanel = new ZonesPanel(cityMap);
  $('zones-open').addEventListener('click', () => zonesPanel.toggle());
  live.addEventListener('alerts', (e) => zonesPanel.onAlerts(e.detail.alerts));
  setInterval(() => zonesPanel.refreshClosures(), 15_000); // hazard closures on the map, panel open or not

  $('window').addEventListener('change', (e) => {
    state.window = e.target.value;
    localStorage.setItem('cb_window', state.window);
    resubscribe(true);
    pollKPIs();
    cityMap.loadLinks(state.window);
  });
  pollStatus().then(() => { pollKPIs(); sparks.load(); });
  setInterval(() => sparks.load(), 60_000);
  setInterval(pollStatus, 5000);
  setInterval(pollKPIs, 10000);
  pollUnits();
  setInterval(pollUnits, 4000);
  setInterval(() => cityMap.loadLinks(state.window), 5000);
  setInterval(ageOut, 30000);
  window.citybrain = { state, get map() { return cityMap.map; }, cityMap, live, queue, detail, dispatcher, intersections, replay, historyPanel, sparks, zonesPanel };
}

// enterTimeline switches the REST-fed parts between the live city and a replay session: while replaying, the
// incidents and units come only from the session's websocket (the REST lists are live), KPIs are computed from
// the session's cells, and the dispatch panel is closed (dispatch is live-only).
function enterTimeline(replaying) {
  state.replaying = replaying;
  showConn({ state: live.state });
  state.cells.clear(); history.clear();
  for (const k of ['units', 'transit', 'sensors']) state[k].clear();
  state.eventNow = 0;
  queue.paused = replaying;
  queue.replace([]);
  dispatcher.show(null);
  detail.close();
  cityMap.setCells(state.cells, state.res);
  updatePoints();
  if (!replaying) { queue.refresh(); pollUnits(); pollStatus(); }
  cityKPIs = null;
  pollKPIs();
}

function layersWanted() {
  const l = ['cells', 'incidents', 'units'];
  for (const f of ['transit', 'sensors', 'alerts']) if (state.features.has(f)) l.push(f);
  return l;
}

function resubscribe(force = false) {
  if (!live || !cityMap) return;
  const { bbox, res } = cityMap.viewport(state.baseRes);
  const cur = live.sub;
  const view = cityMap.map.getBounds();
  const inner = [view.getWest(), view.getSouth(), view.getEast(), view.getNorth()];
  if (!force && cur && cur.res === res && cur.window === state.window && cityMap.contains(cur.bbox, inner)) return;
  if (!cur || cur.res !== res || cur.window !== state.window) history.clear();
  live.subscribe({ bbox, res, window: state.window, layers: layersWanted() });
}

// ---------- live data ----------
function applyCells(m, snapshot) {
  if (snapshot) state.cells.clear();
  if (m.reset) {
    // A new timeline (a replay seeked backwards): what happened after the new position is gone.
    queue.replace([]);
    for (const k of ['units', 'transit', 'sensors']) state[k].clear();
    updatePoints();
  }
  state.res = m.res;
  const now = Date.parse(m.now) || Date.now();
  for (const c of m.cells || []) { state.cells.set(c.cell, c); history.add(c, now); }
  for (const id of m.removed || []) state.cells.delete(id);
  if (m.now) { state.eventNow = Date.parse(m.now); queue.eventNow = state.eventNow; }
  $('evtime').textContent = clock(m.now);
  $('wmark').textContent = m.watermark ? t('clock.wm', { t: clock(m.watermark) }) : '';
  cityMap.setCells(state.cells, m.res);
  // Layers the server pushes once those features exist (docs/command-center.md "Server contract").
  if (Array.isArray(m.incidents)) {
    // A replay's snapshot is the whole truth of its timeline; live, the REST list also holds ended incidents.
    if (snapshot && state.replaying) queue.replace(m.incidents); else queue.merge(m.incidents);
  }
  let pts = false;
  for (const [key, list] of [['units', m.units], ['transit', m.transit || m.vehicles], ['sensors', m.sensors]]) {
    if (!Array.isArray(list)) continue;
    if (snapshot) state[key].clear();
    for (const x of list) state[key].set(x.id, { ...x, seen: Date.now() });
    for (const id of m['removed_' + key] || []) state[key].delete(id);
    state.features.add(key);
    pts = true;
  }
  if (pts) { updatePoints(); markAvailability(); }
  refreshDetail();
}

// Units: GET /api/v1/units (latest position and status of every unit; "dispatched" while a dispatch holds it).
async function pollUnits() {
  if (state.unitsUnavailable || state.replaying) return;
  try {
    const list = await api('/api/v1/units');
    state.units.clear();
    for (const u of list) state.units.set(u.id, { ...u, unit_type: u.unit_type || u.type, seen: Date.now() });
    if (!state.features.has('units')) { state.features.add('units'); markAvailability(); }
    updatePoints();
    queue.render();
  } catch (e) {
    if (e.status === 404 || e.status === 405) state.unitsUnavailable = true;
  }
}

function ageOut() {
  const cutoff = Date.now() - 5 * 60_000;
  let changed = false;
  for (const id of state.transit.keys()) if (state.transit.get(id).seen < cutoff) { state.transit.delete(id); changed = true; }
  if (changed) updatePoints();
}

// sensorKind: the server names an asset's kind in `asset` (camera, detector, sensor); `kind` is its event kind.
const sensorKind = (s) => { const k = s.asset || s.kind; return k === 'camera' || k === 'video' ? 'camera' : k === 'detector' ? 'detector' : 'sensor'; };

const point = (x, props) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [x.lng, x.lat] }, properties: props });

function updatePoints() {
  if (!cityMap) return;
  cityMap.setPoints('units', [...state.units.values()].map((u) => point(u, { id: u.id, unit_type: u.unit_type || 'rescue', status: u.status || 'busy' })));
  cityMap.setPoints('transit', [...state.transit.values()].map((v) => point(v, { id: v.id, mode: v.mode || 'bus', delay: v.delay_s ?? 0, route: v.route || '' })));
  cityMap.setPoints('sensors', [...state.sensors.values()].map((s) => point(s, { id: s.id, kind: sensorKind(s) })));
  updateKPIs();
}

function updateIncidentsOnMap(items) {
  cityMap.setPoints('incidents', items.filter((i) => i.lat != null).map((i) => point(i, {
    id: i.id, type: i.type, score: i.score || 0, status: i.status, new: queue.isNew(i.id) && i.status === 'suspected' })));
}

function refreshDetail(force = false) {
  const cur = detail?.cur;
  if (!cur || detail.box.hidden) return;
  if (!force && performance.now() - (refreshDetail.last || 0) < 1000) return;
  refreshDetail.last = performance.now();
  if (cur.kind === 'cell') detail.showCell(state.cells.get(cur.id), cur.id);
  else if (cur.kind === 'road') detail.showRoad(cur.props, cityMap.roadCell(cur.id), cityMap.links?.get(cur.id));
  else if (cur.kind === 'thing' && cur.pick) onPick(cur.pick);
}

function onPick(p) {
  if (!p) { detail.close(); return; }
  cityMap.select(p.kind, p.id);
  switch (p.kind) {
    case 'incident': queue.select(p.id); break;
    case 'cell': detail.showCell(state.cells.get(p.id), p.id); break;
    case 'road': detail.showRoad(p.props, cityMap.roadCell(p.id), cityMap.links?.get(p.id)); break;
    case 'unit': {
      const u = state.units.get(p.id) || {};
      detail.showThing(t('unit.title', { id: p.id }), [[t('f.type'), label('unit', u.unit_type)], [t('f.status'), label('ustatus', u.status)],
        [t('f.speed'), u.speed_kmh != null ? t('unit.kmh_v', { v: num(u.speed_kmh) }) : '—'], [t('f.updated'), clock(u.ts || u.updated_at)]], p);
      break;
    }
    case 'transit': {
      const v = state.transit.get(p.id) || {};
      detail.showThing(`${label('mode', v.mode || 'vehicle')} ${v.route || ''} · ${p.id}`, [[t('f.route'), v.route || '—'],
        [t('f.delay'), v.delay_s != null ? t('unit.min_v', { v: num(v.delay_s / 60) }) : '—'], [t('f.speed'), t('unit.kmh_v', { v: num(v.speed_kmh) })],
        [t('f.load'), v.load != null ? `${num(v.load * 100)} %` : '—'], [t('f.source'), v.source || '—'], [t('f.updated'), clock(v.ts)]], p);
      break;
    }
    case 'sensor': {
      const s = state.sensors.get(p.id) || {};
      const rows = Object.entries(s).filter(([k]) => !['id', 'lat', 'lng', 'seen', 'kind', 'asset', 'ts'].includes(k)).slice(0, 8)
        .map(([k, v]) => [label('field', k), typeof v === 'number' ? num(v, Number.isInteger(v) ? 0 : 2) : String(v)]);
      rows.push([t('f.updated'), clock(s.ts)]);
      detail.showThing(`${label('asset', sensorKind(s))} ${p.id}`, rows, p);
      break;
    }
    case 'intersection':
      intersections.open(p.id, state.window);
      break;
    default:
  }
}

void distanceM;

// ---------- status, KPIs ----------
async function pollStatus() {
  if (state.replaying && replay?.own) return;
  try {
    const s = await api('/api/v1/status');
    state.status = s;
    if (Array.isArray(s.features)) {
      const before = layersWanted().join();
      for (const f of s.features) state.features.add(f);
      if (layersWanted().join() !== before) resubscribe(true);
      markAvailability();
    }
    if (s.timezone && s.timezone !== state.tz) { state.tz = s.timezone; setTimeZone(s.timezone); }
    if (!state.eventNow && s.now) $('evtime').textContent = clock(s.now);
    replay.fromStatus(s.replay);
    if (s.kpis && !s.replay) showKPIs(s.kpis);
  } catch { /* the connection indicator tells */ }
}

let cityKPIs = null;
async function pollKPIs() {
  if (state.status?.kpis && !state.replaying && !state.status.replay) return; // the server computes them
  try {
    const res = Math.max(0, state.baseRes - 2);
    const base = state.replaying && replay?.own ? `/api/v1/replays/${encodeURIComponent(replay.id)}/cells` : '/api/v1/cells';
    const cells = await api(`${base}?res=${res}&window=${state.window}`);
    let n = 0, sp = 0, tpi = 0;
    for (const c of cells) {
      if (c.speed_kmh == null || !c.samples) continue;
      n += c.samples; sp += c.speed_kmh * c.samples; tpi += (c.tpi ?? 0) * c.samples;
    }
    cityKPIs = n ? { tpi: tpi / n, mean_speed_kmh: sp / n, cells: cells.length } : { tpi: null, mean_speed_kmh: null, cells: 0 };
    updateKPIs();
  } catch { /* keep the last */ }
}

function updateKPIs() {
  const k = (!state.replaying && !state.status?.replay && state.status?.kpis) || cityKPIs || {};
  showKPIs(k);
}

function showKPIs(k) {
  const tpiBox = $('kpi-tpi');
  const lvl = levelOfTPI(k.tpi);
  tpiBox.querySelector('b').textContent = num(k.tpi, 1);
  tpiBox.querySelector('small').textContent = lvl ? LEVEL_LABEL[lvl] : '';
  tpiBox.style.setProperty('--lv', lvl ? LEVEL_COLOR[lvl] : 'inherit');
  tpiBox.dataset.level = lvl || '';
  $('kpi-speed').querySelector('b').textContent = num(k.mean_speed_kmh, 1);
  const active = k.active_incidents ?? queue?.activeCount() ?? 0;
  $('kpi-incidents').querySelector('b').textContent = queue?.available === false && k.active_incidents == null ? '—' : active;
  $('kpi-incidents').classList.toggle('alert', active > 0);
  const hasUnits = state.features.has('units') || k.units_available != null;
  const availUnits = k.units_available ?? [...state.units.values()].filter((u) => u.status === 'available').length;
  $('kpi-units').querySelector('b').textContent = hasUnits ? availUnits : '—';
  $('kpi-units').querySelector('small').textContent = hasUnits ? t('kpi.units.of', { n: k.units_total ?? state.units.size }) : t('layers.nofeed');
}

// ---------- connection ----------
function showConn({ state: s, attempt, reason }) {
  const c = $('conn');
  c.dataset.state = s;
  c.querySelector('span').textContent = s === 'live' && state.replaying ? t('conn.replay') : t('conn.' + s);
  c.classList.toggle('replay', !!state.replaying);
  c.title = reason ? (attempt ? t('conn.attempt', { reason, n: attempt }) : reason) : '';
  const b = $('banner');
  if (s === 'reconnecting' || s === 'offline') {
    b.hidden = false;
    b.textContent = t(s === 'offline' ? 'conn.lost.offline' : 'conn.lost', { t: state.eventNow ? clock(state.eventNow) : t('conn.start') });
  } else {
    b.hidden = true;
    if (s === 'live' && showConn.wasDown) toast(t('conn.restored'), 'ok');
  }
  showConn.wasDown = s === 'reconnecting' || s === 'offline';
}

// ---------- layers ----------
function buildLayerPanel() {
  const box = $('layer-list');
  LAYERS.forEach((l, i) => {
    const on = state.layers[l.key] ?? l.on;
    state.layers[l.key] = on;
    const input = el('input', { type: 'checkbox', 'data-layer': l.key, checked: on, onchange: (e) => toggleLayer(l.key, e.target.checked) });
    box.append(el('label', { class: 'layer' + (l.sub ? ' sub' : ''), 'data-key': l.key, title: t('layers.toggle', { n: i + 1 }) },
      input, el('span', { text: t('layer.' + l.key) }), el('span', { class: 'nf', text: t('layers.nofeed') }), el('kbd', { class: 'k', text: String(i + 1) })));
  });
  markAvailability();
}

function markAvailability() {
  for (const key of ['units', 'sensors', 'transit']) {
    const row = document.querySelector(`.layer[data-key="${key}"]`);
    row?.classList.toggle('na', !state.features.has(key));
  }
}

function toggleLayer(key, on) {
  state.layers[key] = on;
  localStorage.setItem('cb_layers', JSON.stringify(state.layers));
  const input = document.querySelector(`input[data-layer="${key}"]`);
  if (input) input.checked = on;
  cityMap.setLayer(key, on);
}

function applyLayerToggles() {
  for (const l of LAYERS) cityMap.setLayer(l.key, state.layers[l.key] ?? l.on);
}

function buildLegend() {
  const lg = $('legend');
  lg.append(el('div', { class: 'muted', text: t('legend.title') }),
    el('div', { class: 'ramp' }, LEVELS.map((l) => el('i', { style: `background:${LEVEL_COLOR[l]}`, title: LEVEL_LABEL[l] }))),
    el('div', { class: 'ends' }, el('span', { text: t('legend.smooth') }), el('span', { text: t('legend.severe') })),
    el('div', { class: 'sym' },
      ...['crash', 'stalled_vehicle', 'fire', 'medical', 'congestion'].map((k) => el('span', {}, el('img', { src: incidentIconURL(k), alt: '' }), label('inc', k))),
      el('span', {}, el('img', { src: unitIconURL('ambulance', 'available'), alt: '' }), t('legend.unit_available')),
      el('span', {}, el('img', { src: unitIconURL('police', 'en_route'), alt: '' }), t('legend.en_route')),
      el('span', {}, el('img', { src: sensorIconURL('camera'), alt: '' }), t('asset.camera')),
      el('span', {}, el('img', { src: sensorIconURL('detector'), alt: '' }), t('asset.detector')),
      el('span', {}, el('img', { src: sensorIconURL('sensor'), alt: '' }), t('legend.iot')),
      el('span', {}, el('i', { class: 'sw route' }), t('legend.route')),
      el('span', {}, el('i', { class: 'sw wave' }), t('legend.wave')),
      el('span', {}, el('i', { class: 'sw node' }), t('legend.node'))),
    el('div', { class: 'muted small', style: 'margin-top:.4rem', text: t('legend.note') }));
  void UNIT_STATUS_COLOR;
}

// ---------- keyboard ----------
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = e.target.tagName;
  if (tag === 'INPUT' && e.target.type !== 'checkbox' && e.target.type !== 'range') return;
  if (e.target.closest?.('.opt') && (e.key === 'Enter' || e.key === ' ')) return;
  if (tag === 'TEXTAREA' || tag === 'SELECT' || !$('login').hidden || !queue) return;
  const help = $('help');
  if (!help.hidden) { if (e.key === 'Escape' || e.key === '?') help.hidden = true; e.preventDefault(); return; }
  const k = e.key;
  if (k === 'ArrowDown' || k === 'j') queue.move(1);
  else if (k === 'ArrowUp' || k === 'k') queue.move(-1);
  else if (k === 'Enter') { if (queue.selected) queue.select(queue.selected, true); }
  else if (k === 'c' || k === 'C') queue.act(queue.selected, 'confirmed');
  else if (k === 'x' || k === 'X') queue.act(queue.selected, 'dismissed');
  else if (k === 'd' || k === 'D') { const inc = queue.items.get(queue.selected); if (inc) dispatcher.send(inc); }
  else if (k === 'Escape') { detail.close(); queue.selected = null; queue.render(); cityMap.select(null); dispatcher.show(null); $('replay-form').hidden = true; historyPanel.cancelDraw(); zonesPanel?.cancelDraw(); }
  else if (k === '?') help.hidden = false;
  else if (k === 'w' || k === 'W') document.documentElement.classList.toggle('wall');
  else if (k === 'h' || k === 'H') historyPanel.toggle();
  else if (k === 'z' || k === 'Z') zonesPanel?.toggle();
  else if (k === 'l' || k === 'L') setLang(getLang() === 'en' ? 'zh-CN' : 'en');
  else if (k === ' ' && replay?.active) $('tb-play').click();
  else if (/^[1-9]$/.test(k) && LAYERS[Number(k) - 1]) { const l = LAYERS[Number(k) - 1]; toggleLayer(l.key, !state.layers[l.key]); }
  else return;
  e.preventDefault();
});
$('help-close').addEventListener('click', () => { $('help').hidden = true; });

boot();
