// The map: MapLibre GL JS with a style built here, no glyphs URL (MapLibre draws every label with the
// browser's fonts) and no sprite. The base map (basemap.js) is an offline tile archive served by the binary
// (run --basemap) or one made from what the server has: the loaded road network's names and classes, water,
// parks and places (/api/v1/basemap/features). Cells are polygons from the websocket's `boundary`, and every
// icon is drawn on a canvas (icons.js). Nothing is fetched from another host.
import maplibregl from 'maplibre-gl';
import { api } from './api.js';
import { addMapImages } from './icons.js';
import { LEVEL_COLOR, LEVELS } from './util.js';
import { Basemap, baseLayersBelow, baseLayersAbove } from './basemap.js';
import { t } from './i18n.js';

const EMPTY = { type: 'FeatureCollection', features: [] };
const levelColor = ['match', ['get', 'level'], ...LEVELS.flatMap((l) => [l, LEVEL_COLOR[l]]), '#5b6b7c'];
const stateLevelColor = ['match', ['feature-state', 'level'], ...LEVELS.flatMap((l) => [l, LEVEL_COLOR[l]]), '#5b6b7c'];
// Road width by class and zoom (pixels).
const roadWidth = (scale) => ['interpolate', ['exponential', 1.6], ['zoom'],
  10, ['*', scale, ['match', ['get', 'class'], ['motorway', 'trunk'], 2, 'primary', 1.6, 'secondary', 1.1, 0.6]],
  14, ['*', scale, ['match', ['get', 'class'], ['motorway', 'trunk'], 5, 'primary', 4, 'secondary', 3, 'tertiary', 2.2, 1.4]],
  18, ['*', scale, ['match', ['get', 'class'], ['motorway', 'trunk'], 22, 'primary', 18, 'secondary', 14, 'tertiary', 11, 7]]];

// H3 edge length in km by resolution: a point belongs to the cell whose centre is nearest, within one edge.
const H3_EDGE_KM = [1107.7, 418.7, 158.2, 59.81, 22.61, 8.544, 3.229, 1.22, 0.4614, 0.1744, 0.06592, 0.02492];

export function baseStyle() {
  const src = (promoteId) => ({ type: 'geojson', data: EMPTY, promoteId });
  return {
    version: 8,
    sources: {
      roads: src('id'), cells: src('cell'), incidents: src('id'), units: src('id'), transit: src('id'), sensors: src('id'),
      nodes: src('id'), routes: src('id'), wave: src('id'), basefeat: src(undefined),
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#0a1016' } },
      ...baseLayersBelow(),
      { id: 'cells-fill', type: 'fill', source: 'cells',
        paint: { 'fill-color': levelColor, 'fill-opacity': ['case', ['get', 'low'], 0.22, 0.5] } },
      { id: 'cells-3d', type: 'fill-extrusion', source: 'cells', layout: { visibility: 'none' },
        paint: { 'fill-extrusion-color': levelColor, 'fill-extrusion-height': ['get', 'h'], 'fill-extrusion-opacity': 0.82 } },
      { id: 'roads', type: 'line', source: 'roads', layout: { 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': ['match', ['get', 'class'], ['motorway', 'trunk', 'primary'], '#4a5d72', '#34455a'], 'line-width': roadWidth(1) } },
      { id: 'roads-speed', type: 'line', source: 'roads', layout: { 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': stateLevelColor, 'line-width': roadWidth(1.15),
          'line-opacity': ['case', ['boolean', ['feature-state', 'has'], false], 0.95, 0] } },
      { id: 'cells-line', type: 'line', source: 'cells', paint: { 'line-color': levelColor, 'line-opacity': 0.5, 'line-width': 0.8 } },
      ...baseLayersAbove(),
      { id: 'cell-sel', type: 'line', source: 'cells', filter: ['==', ['get', 'cell'], ''], paint: { 'line-color': '#ffffff', 'line-width': 3 } },
      { id: 'road-sel', type: 'line', source: 'roads', filter: ['==', ['get', 'id'], ''],
        paint: { 'line-color': '#ffffff', 'line-width': roadWidth(1.6), 'line-opacity': 0.9 } },
      // Intersections: the end points of the loaded road links (clickable for signal plans).
      { id: 'nodes', type: 'circle', source: 'nodes', minzoom: 13,
        paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 13, 2.5, 16, 6], 'circle-color': '#0b1117',
          'circle-stroke-color': '#9fb3c8', 'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 13, 1, 16, 2], 'circle-stroke-opacity': 0.8 } },
      { id: 'node-sel', type: 'circle', source: 'nodes', filter: ['==', ['get', 'id'], ''],
        paint: { 'circle-radius': 11, 'circle-color': 'rgba(62,166,255,.2)', 'circle-stroke-color': '#3ea6ff', 'circle-stroke-width': 3 } },
      // Dispatch: candidate routes (dashed) and the dispatched unit's route (solid, casing), its green wave.
      { id: 'route-casing', type: 'line', source: 'routes', filter: ['==', ['get', 'kind'], 'dispatch'],
        layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': '#03070b', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 6, 16, 12], 'line-opacity': 0.85 } },
      { id: 'route-option', type: 'line', source: 'routes', filter: ['==', ['get', 'kind'], 'option'],
        layout: { 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': ['case', ['get', 'best'], '#e2e8f0', '#7c8ea3'], 'line-width': ['case', ['get', 'best'], 4, 2.5], 'line-dasharray': [1.5, 1.5], 'line-opacity': 0.9 } },
      { id: 'route', type: 'line', source: 'routes', filter: ['==', ['get', 'kind'], 'dispatch'],
        layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': '#22d3ee', 'line-width': ['interpolate', ['linear'], ['zoom'], 11, 3, 16, 7] } },
      { id: 'wave', type: 'circle', source: 'wave',
        paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 11, 5, 16, 9], 'circle-color': ['case', ['get', 'passed'], '#475569', '#22c55e'],
          'circle-stroke-color': '#03070b', 'circle-stroke-width': 2 } },
      { id: 'sensors', type: 'symbol', source: 'sensors', minzoom: 12,
        layout: { 'icon-image': ['concat', 'sensor-', ['get', 'kind']], 'icon-size': ['interpolate', ['linear'], ['zoom'], 12, 0.45, 16, 0.75], 'icon-allow-overlap': true } },
      { id: 'transit', type: 'circle', source: 'transit',
        paint: { 'circle-radius': ['interpolate', ['linear'], ['zoom'], 10, 3, 16, 7],
          'circle-color': ['match', ['get', 'mode'], 'tram', '#a78bfa', 'metro', '#f472b6', '#38bdf8'],
          'circle-stroke-width': 2, 'circle-stroke-color': ['case', ['>', ['get', 'delay'], 300], '#ef4444', '#0b1117'] } },
      { id: 'units', type: 'symbol', source: 'units',
        layout: { 'icon-image': ['concat', 'unit-', ['get', 'unit_type'], '-', ['get', 'status']], 'icon-size': ['interpolate', ['linear'], ['zoom'], 10, 0.6, 16, 0.95],
          'icon-allow-overlap': true, 'icon-ignore-placement': true } },
      { id: 'inc-pulse', type: 'circle', source: 'incidents', filter: ['==', ['get', 'new'], true],
        paint: { 'circle-radius': 17, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#ff4d4f', 'circle-stroke-width': 2, 'circle-stroke-opacity': 0.6 } },
      { id: 'inc-sel', type: 'circle', source: 'incidents', filter: ['==', ['get', 'id'], ''],
        paint: { 'circle-radius': 24, 'circle-color': 'rgba(62,166,255,.18)', 'circle-stroke-color': '#3ea6ff', 'circle-stroke-width': 3 } },
      { id: 'incidents', type: 'symbol', source: 'incidents',
        layout: { 'icon-image': ['concat', 'inc-', ['get', 'type']], 'icon-size': ['interpolate', ['linear'], ['zoom'], 10, 0.8, 16, 1.15],
          'icon-allow-overlap': true, 'icon-ignore-placement': true, 'symbol-sort-key': ['-', 0, ['get', 'score']] } },
    ],
  };
}

// Switchable layers: key, label, map layers, shortcut.
// (Their labels are t('layer.<key>').)
export const LAYERS = [
  { key: 'cells', layers: ['cells-fill', 'cells-line'], on: true },
  { key: 'cells3d', layers: [], on: false, sub: true },
  { key: 'roads', layers: ['roads-speed'], on: true },
  { key: 'incidents', layers: ['incidents', 'inc-pulse', 'inc-sel'], on: true },
  { key: 'units', layers: ['units'], on: true },
  { key: 'sensors', layers: ['sensors'], on: false },
  { key: 'transit', layers: ['transit'], on: false },
  { key: 'nodes', layers: ['nodes', 'node-sel'], on: true },
  { key: 'labels', layers: ['road-labels', 'base-labels', 'base-water-labels', 'base-road-labels'], on: true },
];

export class CityMap extends EventTarget {
  constructor(container, { onLoad }) {
    super();
    this.res = 9;
    this.cellIndex = null;
    this.roadMid = new Map(); // road id → [lng, lat] midpoint
    this.roadState = new Map();
    this.dirty = new Set();
    this.data = { cells: EMPTY, incidents: EMPTY, units: EMPTY, transit: EMPTY, sensors: EMPTY, nodes: EMPTY, routes: EMPTY, wave: EMPTY };
    this.nodes = new Map(); // intersection id → [lng, lat], from the loaded links' end points
    this.waveMarkers = [];
    this.netKey = '';
    this.netAbort = null;
    this.pulseOn = false;
    this.toggles = {};
    this.map = new maplibregl.Map({
      container, style: baseStyle(), center: [120.17, 30.26], zoom: 12.5, hash: 'view', attributionControl: false,
      maxPitch: 65, fadeDuration: 0, dragRotate: true, pitchWithRotate: true,
      localIdeographFontFamily: '"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif',
    });
    this.basemap = new Basemap(this);
    this.map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), 'top-right');
    this.map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    this.map.on('load', () => {
      addMapImages(this.map);
      this.loaded = true;
      for (const l of LAYERS) this.setLayer(l.key, this.toggles[l.key] ?? l.on);
      if (this.roads) this.map.getSource('roads').setData(this.roads);
      this.loadNetwork();
      this.basemap.relabel(); // the language may have changed while the style loaded
      this.basemap.load();
      this.flush();
      onLoad?.();
    });
    this.map.on('moveend', () => { this.loadNetwork(); this.emit('viewport'); });
    this.map.on('click', (e) => this.onClick(e));
    for (const id of ['cells-fill', 'cells-3d', 'roads', 'incidents', 'units', 'sensors', 'transit', 'nodes']) {
      this.map.on('mouseenter', id, () => { this.map.getCanvas().style.cursor = 'pointer'; });
      this.map.on('mouseleave', id, () => { this.map.getCanvas().style.cursor = ''; });
    }
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // relabel shows the map's labels in the current language.
  relabel() { this.basemap.relabel(); }

  // viewport returns the padded bbox to subscribe to and the H3 resolution for the zoom.
  viewport(baseRes) {
    const b = this.map.getBounds(), z = this.map.getZoom();
    const dx = (b.getEast() - b.getWest()) * 0.25, dy = (b.getNorth() - b.getSouth()) * 0.25;
    const bbox = [Math.max(-180, b.getWest() - dx), Math.max(-85, b.getSouth() - dy), Math.min(180, b.getEast() + dx), Math.min(85, b.getNorth() + dy)]
      .map((v) => Math.round(v * 1e4) / 1e4);
    // ~1 cell edge ≥ 12 px: res 9 from zoom 13, one coarser per zoom level below.
    const res = Math.max(0, Math.min(baseRes, Math.round(z) - 4));
    return { bbox, res };
  }

  contains(outer, inner) {
    return outer && inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3];
  }

  // fitNetwork centres the map on the road network (major roads), unless the URL names a view.
  async fitNetwork() {
    if (/[#&]view=/.test(location.hash)) return;
    try {
      const fc = await api('/api/v1/network?zoom=9');
      let w = 180, s = 90, e = -180, n = -90;
      for (const f of fc.features || []) for (const [x, y] of f.geometry.coordinates) {
        w = Math.min(w, x); e = Math.max(e, x); s = Math.min(s, y); n = Math.max(n, y);
      }
      if (w < e) {
        const panel = document.getElementById('layers');
        const left = panel && panel.offsetWidth < this.map.getContainer().clientWidth / 2 ? panel.offsetWidth + 40 : 30;
        this.map.fitBounds([[w, s], [e, n]], { padding: { top: 30, bottom: 30, left, right: 60 }, duration: 0, maxZoom: 15 });
      }
    } catch { /* keep the default view */ }
  }

  // loadNetwork fetches the roads of the (padded) viewport at the current zoom, when it changed enough.
  async loadNetwork() {
    const z = Math.floor(this.map.getZoom());
    const b = this.map.getBounds();
    const view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    if (this.netZoom === z && this.contains(this.netBBox, view)) return;
    const dx = (view[2] - view[0]) * 0.5, dy = (view[3] - view[1]) * 0.5;
    const bbox = [Math.max(-180, view[0] - dx), Math.max(-85, view[1] - dy), Math.min(180, view[2] + dx), Math.min(85, view[3] + dy)]
      .map((v) => Math.round(v * 1e4) / 1e4);
    this.netAbort?.abort();
    const ctl = new AbortController();
    this.netAbort = ctl;
    try {
      const fc = await api(`/api/v1/network?bbox=${bbox.join(',')}&zoom=${z}`, { signal: ctl.signal });
      this.netZoom = z; this.netBBox = bbox;
      this.roadMid.clear();
      for (const f of fc.features) {
        const c = f.geometry.coordinates, m = c.length >> 1;
        this.roadMid.set(f.properties.id, c.length % 2 ? c[m] : [(c[m - 1][0] + c[m][0]) / 2, (c[m - 1][1] + c[m][1]) / 2]);
      }
      this.roads = fc;
      this.setNodes(fc);
      this.roadState.clear();
      if (this.loaded) this.map.getSource('roads').setData(fc);
      this.roadCount = fc.features.length;
      this.colourRoads();
      this.emit('roads');
      this.emit('network', fc);
    } catch (e) {
      if (e.name !== 'AbortError') this.emit('error', 'road network: ' + e.message);
    }
  }

  // setNodes derives the intersections from the links' `from`/`to` and the ends of their geometry. The ends of
  // a simplified line are kept (Douglas-Peucker), so they are the nodes' positions.
  setNodes(fc) {
    const nodes = new Map();
    for (const f of fc.features) {
      const c = f.geometry.coordinates, p = f.properties;
      if (p.from && !nodes.has(p.from)) nodes.set(p.from, c[0]);
      if (p.to && !nodes.has(p.to)) nodes.set(p.to, c[c.length - 1]);
    }
    this.nodes = nodes;
    this.data.nodes = { type: 'FeatureCollection', features: [...nodes].map(([id, xy]) =>
      ({ type: 'Feature', geometry: { type: 'Point', coordinates: xy }, properties: { id } })) };
    this.markDirty('nodes');
  }

  // setRoutes shows candidate routes (kind "option", the best one brighter) and the dispatched route ("dispatch").
  setRoutes(features) {
    this.data.routes = { type: 'FeatureCollection', features };
    this.markDirty('routes');
  }

  // setWave shows the green-wave intersections of a dispatch: a dot each and a label with its order and the
  // time it should turn green (HTML markers: the style has no glyphs, by design).
  setWave(list, fmt) {
    this.data.wave = { type: 'FeatureCollection', features: list.map((g) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [g.lng, g.lat] },
      properties: { id: g.node_id, passed: !!g.passed } })) };
    this.markDirty('wave');
    const keep = this.waveMarkers.length === list.length;
    if (!keep) { for (const m of this.waveMarkers) m.remove(); this.waveMarkers = []; }
    list.forEach((g, i) => {
      let m = this.waveMarkers[i];
      if (!m) {
        const e = document.createElement('div');
        e.className = 'wave-label';
        m = new maplibregl.Marker({ element: e, anchor: 'left', offset: [12, 0] }).setLngLat([g.lng, g.lat]).addTo(this.map);
        this.waveMarkers[i] = m;
      }
      const e = m.getElement();
      e.classList.toggle('passed', !!g.passed);
      e.dataset.node = g.node_id;
      e.innerHTML = '';
      const b = document.createElement('b'); b.textContent = String(g.order ?? i + 1);
      const s = document.createElement('span'); s.textContent = g.passed ? t('wave.passed') : t('wave.green', { t: fmt(g.green_at) });
      e.append(b, s);
      m.setLngLat([g.lng, g.lat]);
    });
  }

  // setCells replaces the cells shown (cells: Map id → cell object with boundary).
  setCells(cells, res) {
    this.res = res;
    const features = [];
    const idx = new Map();
    const step = (H3_EDGE_KM[res] || 1) / 111; // degrees of latitude per edge
    this.cellStep = step;
    for (const c of cells.values()) {
      if (!c.boundary || c.boundary.length < 3) continue;
      const ring = c.boundary.slice();
      ring.push(ring[0]);
      const h = c.flow_vph != null ? Math.min(1500, c.flow_vph * 0.35) : Math.min(1500, (c.samples || 0) * 4);
      features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] },
        properties: { cell: c.cell, level: c.level, low: !!c.low_samples || c.speed_kmh == null, h } });
      const k = Math.floor(c.lat / step) + ':' + Math.floor(c.lng / step);
      if (!idx.has(k)) idx.set(k, []);
      idx.get(k).push(c);
    }
    this.cellIndex = idx;
    this.cellsById = cells;
    this.data.cells = { type: 'FeatureCollection', features };
    this.cellCount = features.length;
    this.markDirty('cells');
    this.colourRoadsSoon();
  }

  // cellAt returns the cell containing a point: the one with the nearest centre within one edge length.
  cellAt(lng, lat) {
    if (!this.cellIndex) return null;
    const step = this.cellStep, i = Math.floor(lat / step), j = Math.floor(lng / step);
    const kx = Math.cos(lat * Math.PI / 180);
    let best = null, bd = Infinity;
    for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) {
      for (const c of this.cellIndex.get((i + a) + ':' + (j + b)) || []) {
        const d = (c.lat - lat) ** 2 + ((c.lng - lng) * kx) ** 2;
        if (d < bd) { bd = d; best = c; }
      }
    }
    return best && Math.sqrt(bd) <= step * 1.05 ? best : null;
  }

  colourRoadsSoon() {
    if (this.roadTimer || this.links) return;
    this.roadTimer = setTimeout(() => { this.roadTimer = null; this.colourRoads(); }, 800);
  }

  // loadLinks fetches the live per-link speeds (GET /api/v1/links, map-matched by the engine) for the roads
  // loaded; without that endpoint roads take the level of the cell at their midpoint.
  async loadLinks(window) {
    if (!this.netBBox || this.linksUnavailable) return;
    try {
      const list = await api(`/api/v1/links?bbox=${this.netBBox.join(',')}&window=${window}`);
      this.links = new Map(list.map((l) => [l.link, l]));
      this.colourRoads();
    } catch (e) {
      if (e.status === 404 || e.status === 405) { this.linksUnavailable = true; this.links = null; }
    }
  }

  // colourRoads sets each road's level through feature state, so the road geometry is not re-sent.
  colourRoads() {
    if (!this.loaded || !this.roads) return;
    for (const [id, [lng, lat]] of this.roadMid) {
      let level = null;
      if (this.links) {
        const l = this.links.get(id);
        level = l && l.speed_kmh != null && l.samples > 0 ? l.level : null;
      } else {
        const c = this.cellAt(lng, lat);
        level = c && c.speed_kmh != null ? c.level : null;
      }
      const prev = this.roadState.get(id);
      if (prev === level) continue;
      this.roadState.set(id, level);
      this.map.setFeatureState({ source: 'roads', id }, level ? { has: true, level } : { has: false, level: '' });
    }
  }

  roadCell(id) {
    const m = this.roadMid.get(id);
    return m ? this.cellAt(m[0], m[1]) : null;
  }

  setPoints(name, features) {
    this.data[name] = { type: 'FeatureCollection', features };
    this.markDirty(name);
  }

  markDirty(name) {
    this.dirty.add(name);
    if (this.flushTimer) return;
    const since = performance.now() - (this.lastFlush || 0);
    this.flushTimer = setTimeout(() => { this.flushTimer = null; requestAnimationFrame(() => this.flush()); }, Math.max(0, 250 - since));
  }

  flush() {
    if (!this.loaded) return;
    this.lastFlush = performance.now();
    for (const name of this.dirty) this.map.getSource(name)?.setData(this.data[name]);
    this.dirty.clear();
    this.pulse();
  }

  // pulse rings the new incidents with a CSS-animated marker each: the map itself is not repainted for it (a
  // WebGL repaint 20 times a second with every label is what a video wall or a software renderer cannot afford).
  pulse() {
    this.pulseMarkers ||= new Map();
    const want = new Map();
    if (this.toggles.incidents !== false) {
      for (const f of this.data.incidents.features) if (f.properties.new) want.set(f.properties.id, f.geometry.coordinates);
    }
    for (const [id, m] of this.pulseMarkers) if (!want.has(id)) { m.remove(); this.pulseMarkers.delete(id); }
    for (const [id, xy] of want) {
      let m = this.pulseMarkers.get(id);
      if (!m) {
        const e = document.createElement('div'); // the marker positions it with a transform; the ring inside animates
        e.className = 'inc-pulse-at';
        e.append(document.createElement('div'));
        e.firstChild.className = 'inc-pulse';
        m = new maplibregl.Marker({ element: e }).setLngLat(xy).addTo(this.map);
        this.pulseMarkers.set(id, m);
      } else m.setLngLat(xy);
    }
  }

  setLayer(key, on) {
    this.toggles[key] = on;
    if (!this.loaded) return;
    const vis = (id, v) => this.map.getLayer(id) && this.map.setLayoutProperty(id, 'visibility', v ? 'visible' : 'none');
    if (key === 'cells' || key === 'cells3d') {
      const cellsOn = this.toggles.cells, d3 = this.toggles.cells3d;
      vis('cells-fill', cellsOn && !d3);
      vis('cells-line', cellsOn && !d3);
      vis('cells-3d', cellsOn && d3);
      if (key === 'cells3d') this.map.easeTo({ pitch: d3 ? 50 : 0, duration: 600 });
      return;
    }
    const def = LAYERS.find((l) => l.key === key);
    for (const id of def?.layers || []) vis(id, on);
    if (key === 'incidents') this.pulse();
  }

  select(kind, id) {
    if (!this.loaded) return;
    this.map.setFilter('cell-sel', ['==', ['get', 'cell'], kind === 'cell' ? id : '']);
    this.map.setFilter('road-sel', ['==', ['get', 'id'], kind === 'road' ? id : '']);
    this.map.setFilter('inc-sel', ['==', ['get', 'id'], kind === 'incident' ? id : '']);
    this.map.setFilter('node-sel', ['==', ['get', 'id'], kind === 'intersection' ? id : '']);
  }

  onClick(e) {
    const order = ['incidents', 'units', 'transit', 'sensors', 'nodes', 'roads', 'cells-3d', 'cells-fill'];
    const layers = order.filter((id) => this.map.getLayer(id) && this.map.getLayoutProperty(id, 'visibility') !== 'none');
    const box = [[e.point.x - 4, e.point.y - 4], [e.point.x + 4, e.point.y + 4]];
    const hits = this.map.queryRenderedFeatures(box, { layers });
    hits.sort((a, b) => order.indexOf(a.layer.id) - order.indexOf(b.layer.id));
    const f = hits[0];
    if (!f) { this.emit('pick', null); return; }
    const kind = { incidents: 'incident', units: 'unit', transit: 'transit', sensors: 'sensor', roads: 'road', nodes: 'intersection' }[f.layer.id] || 'cell';
    this.emit('pick', { kind, id: kind === 'cell' ? f.properties.cell : f.properties.id, props: f.properties, lngLat: e.lngLat });
  }

  flyTo(lng, lat, zoom) {
    this.map.flyTo({ center: [lng, lat], zoom: Math.max(this.map.getZoom(), zoom || 15), speed: 1.6 });
  }
}
