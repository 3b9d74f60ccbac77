// The base map (docs/command-center.md "Base map"), offline and labelled in the UI language:
// - a tile archive the binary serves (run --basemap FILE.pmtiles|FILE.mbtiles|URL): GET /api/v1/basemap says
//   what it is (vector or raster, its layers); PMTiles are read with the pmtiles protocol through range
//   requests to /basemap/tiles.pmtiles, MBTiles and URLs tile by tile through /basemap/tiles/{z}/{x}/{y};
// - and always what the server has: water, parks and place names (GET /api/v1/basemap/features: the demo
//   city's West Lake, or an OSM extract given with run --osm) and the road network's names (the roads source).
// Labels are drawn by MapLibre with the browser's fonts (the style has no glyphs URL), so Chinese needs no
// font download either.
import maplibregl from 'maplibre-gl';
import { Protocol } from 'pmtiles';
import { api } from './api.js';
import { getLang } from './i18n.js';

let protocolAdded = false;

// nameExpr is the feature's name in the UI language: name_zh / name_en (our GeoJSON), name:zh / name:en
// (OpenMapTiles, Protomaps), then the local name.
export function nameExpr(lang = getLang()) {
  const zh = [['get', 'name_zh'], ['get', 'name:zh'], ['get', 'name:zh-Hans']];
  const en = [['get', 'name_en'], ['get', 'name:en'], ['get', 'name:latin']];
  const order = lang === 'zh-CN' ? [...zh, ['get', 'name'], ...en] : [...en, ['get', 'name'], ...zh];
  return ['coalesce', ...order, ''];
}

const FONT = ['sans-serif'];
const HALO = { 'text-halo-color': '#05090d', 'text-halo-width': 1.6, 'text-halo-blur': 0.5 };

// baseLayersBelow are drawn under the cells: water, parks, and roads of the basemap features.
export function baseLayersBelow() {
  return [
    { id: 'base-park', type: 'fill', source: 'basefeat', filter: ['==', ['get', 'kind'], 'park'],
      paint: { 'fill-color': '#10261c', 'fill-opacity': 0.95 } },
    { id: 'base-water', type: 'fill', source: 'basefeat', filter: ['==', ['get', 'kind'], 'water'],
      paint: { 'fill-color': '#0d2a40', 'fill-outline-color': '#1b4463' } },
    { id: 'base-waterway', type: 'line', source: 'basefeat', filter: ['==', ['get', 'kind'], 'waterway'],
      paint: { 'line-color': '#1b4463', 'line-width': ['interpolate', ['linear'], ['zoom'], 12, 1, 16, 4] } },
    { id: 'base-roads', type: 'line', source: 'basefeat', filter: ['==', ['get', 'kind'], 'road'],
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': '#1f2c3a', 'line-width': ['interpolate', ['exponential', 1.6], ['zoom'], 11, 0.6, 14, 2, 18, 10] } },
  ];
}

// baseLayersAbove are the labels, above cells and roads, under the operational symbols.
export function baseLayersAbove() {
  const lang = getLang();
  return [
    { id: 'base-labels', type: 'symbol', source: 'basefeat', filter: ['all', ['==', ['get', 'kind'], 'label'], ['!=', ['get', 'of'], 'water']],
      minzoom: 11,
      layout: { 'text-field': nameExpr(lang), 'text-font': FONT, 'text-size': ['interpolate', ['linear'], ['zoom'], 11, 11, 16, 15], 'symbol-sort-key': ['get', 'rank'] },
      paint: { 'text-color': ['match', ['get', 'of'], 'park', '#7fbf8f', '#b8c4d0'], ...HALO } },
    { id: 'road-labels', type: 'symbol', source: 'roads', minzoom: 12.5,
      filter: ['any', ['has', 'name'], ['has', 'name_zh'], ['has', 'name_en']],
      layout: { 'symbol-placement': 'line', 'text-field': nameExpr(lang), 'text-font': FONT, 'symbol-spacing': 320,
        'text-size': ['interpolate', ['linear'], ['zoom'], 13, ['match', ['get', 'class'], ['motorway', 'trunk', 'primary'], 12, 10.5], 17, 15],
        'text-max-angle': 35, 'text-padding': 4 },
      paint: { 'text-color': ['match', ['get', 'class'], ['motorway', 'trunk', 'primary'], '#e2e8f0', '#b6c2cf'], ...HALO } },
    { id: 'base-road-labels', type: 'symbol', source: 'basefeat', minzoom: 13.5,
      filter: ['all', ['==', ['get', 'kind'], 'road'], ['any', ['has', 'name'], ['has', 'name_zh'], ['has', 'name_en']]],
      layout: { 'symbol-placement': 'line', 'text-field': nameExpr(lang), 'text-font': FONT, 'symbol-spacing': 360, 'text-size': 11 },
      paint: { 'text-color': '#97a6b6', ...HALO } },
    // Last: placed first, so the lake's name wins over the islands' and streets' around it.
    { id: 'base-water-labels', type: 'symbol', source: 'basefeat', filter: ['all', ['==', ['get', 'kind'], 'label'], ['==', ['get', 'of'], 'water']],
      layout: { 'text-field': nameExpr(lang), 'text-font': FONT, 'text-size': ['interpolate', ['linear'], ['zoom'], 11, 12, 15, 18], 'text-letter-spacing': 0.15 },
      paint: { 'text-color': '#6fa8d6', ...HALO } },
  ];
}

const LABEL_LAYERS = ['base-water-labels', 'base-labels', 'road-labels', 'base-road-labels'];

export class Basemap {
  constructor(cityMap) {
    this.cm = cityMap;
    this.info = null;    // GET /api/v1/basemap
    this.tileLayers = [];
  }

  get map() { return this.cm.map; }

  async load() {
    try {
      this.info = await api('/api/v1/basemap');
    } catch { this.info = null; }
    try {
      const fc = await api('/api/v1/basemap/features');
      this.features = fc;
      this.map.getSource('basefeat')?.setData(fc);
    } catch (e) { this.cm.emit('error', 'basemap features: ' + e.message); }
    if (this.info?.tiles) this.addTiles(this.info.tiles);
  }

  // addTiles adds the tile archive's source and a style for it under the server's own base layers.
  addTiles(ti) {
    const src = { attribution: ti.attribution || '', minzoom: ti.minzoom ?? 0, maxzoom: ti.maxzoom ?? 14 };
    if (ti.kind === 'pmtiles') {
      if (!protocolAdded) { maplibregl.addProtocol('pmtiles', new Protocol().tile); protocolAdded = true; }
      src.url = 'pmtiles://' + location.origin + ti.url;
    } else {
      src.tiles = [location.origin + ti.url];
    }
    if (ti.bounds) src.bounds = ti.bounds;
    const before = 'base-park';
    if (ti.type === 'raster') {
      this.map.addSource('basemap', { type: 'raster', tileSize: ti.tile_size || 256, ...src });
      this.map.addLayer({ id: 'basemap-raster', type: 'raster', source: 'basemap', paint: { 'raster-opacity': 0.55, 'raster-saturation': -0.6, 'raster-brightness-max': 0.55 } }, before);
      this.tileLayers = ['basemap-raster'];
      return;
    }
    this.map.addSource('basemap', { type: 'vector', ...src });
    const layers = vectorStyle(new Set((ti.vector_layers || []).map((l) => l.id)));
    for (const l of layers.fill) this.map.addLayer(l, before);
    for (const l of layers.labels) this.map.addLayer(l, 'base-water-labels');
    this.tileLayers = [...layers.fill, ...layers.labels].map((l) => l.id);
    this.tileLabels = layers.labels.map((l) => l.id);
  }

  setLabels(on) {
    for (const id of [...LABEL_LAYERS, ...(this.tileLabels || [])]) {
      if (this.map.getLayer(id)) this.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
    }
  }

  relabel() {
    if (!this.cm.loaded) return;
    for (const id of [...LABEL_LAYERS, ...(this.tileLabels || [])]) {
      if (this.map.getLayer(id)) this.map.setLayoutProperty(id, 'text-field', nameExpr());
    }
  }
}

// vectorStyle styles the layers of a vector tile archive it knows by name: the OpenMapTiles schema (water,
// landcover, landuse, park, transportation, transportation_name, place, building) and the Protomaps basemap
// schema (earth, water, landuse, landcover, roads, places, buildings). Unknown layers are left out.
export function vectorStyle(names) {
  const fill = [], labels = [];
  const has = (n) => names.has(n);
  const lbl = (id, layer, filter, size, color) => labels.push({ id, type: 'symbol', source: 'basemap', 'source-layer': layer, ...(filter ? { filter } : {}),
    layout: { 'text-field': nameExpr(), 'text-font': FONT, 'text-size': size }, paint: { 'text-color': color, ...HALO } });
  if (has('earth')) fill.push({ id: 'bm-earth', type: 'fill', source: 'basemap', 'source-layer': 'earth', paint: { 'fill-color': '#0c131a' } });
  for (const n of ['landcover', 'landuse', 'park']) {
    if (has(n)) fill.push({ id: 'bm-' + n, type: 'fill', source: 'basemap', 'source-layer': n,
      filter: ['match', ['coalesce', ['get', 'class'], ['get', 'kind'], ['get', 'pmap:kind'], ''], ['park', 'grass', 'wood', 'forest', 'garden', 'recreation_ground', 'nature_reserve', 'cemetery', 'meadow', 'national_park'], true, n === 'park'],
      paint: { 'fill-color': '#10261c', 'fill-opacity': 0.9 } });
  }
  if (has('water')) fill.push({ id: 'bm-water', type: 'fill', source: 'basemap', 'source-layer': 'water', filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#0d2a40' } });
  if (has('waterway')) fill.push({ id: 'bm-waterway', type: 'line', source: 'basemap', 'source-layer': 'waterway', paint: { 'line-color': '#1b4463', 'line-width': 1.2 } });
  if (has('building') || has('buildings')) {
    const b = has('building') ? 'building' : 'buildings';
    fill.push({ id: 'bm-building', type: 'fill', source: 'basemap', 'source-layer': b, minzoom: 14, paint: { 'fill-color': '#151e28' } });
  }
  const roads = has('transportation') ? 'transportation' : has('roads') ? 'roads' : null;
  if (roads) {
    fill.push({ id: 'bm-roads', type: 'line', source: 'basemap', 'source-layer': roads, filter: ['==', ['geometry-type'], 'LineString'],
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': '#1f2c3a', 'line-width': ['interpolate', ['exponential', 1.6], ['zoom'], 10, 0.5, 14, 2, 18, 9] } });
  }
  const roadNames = has('transportation_name') ? 'transportation_name' : roads === 'roads' ? 'roads' : null;
  if (roadNames) {
    labels.push({ id: 'bm-road-labels', type: 'symbol', source: 'basemap', 'source-layer': roadNames, minzoom: 13,
      layout: { 'symbol-placement': 'line', 'text-field': nameExpr(), 'text-font': FONT, 'text-size': 11 }, paint: { 'text-color': '#97a6b6', ...HALO } });
  }
  if (has('water_name')) lbl('bm-water-labels', 'water_name', null, 13, '#6fa8d6');
  const places = has('place') ? 'place' : has('places') ? 'places' : null;
  if (places) lbl('bm-place-labels', places, null, ['interpolate', ['linear'], ['zoom'], 8, 11, 14, 15], '#b8c4d0');
  return { fill, labels };
}
