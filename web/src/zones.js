// The zones and alerts panel (docs/zones.md): commanders and planners draw a zone on the map (click its
// corners, Finish), name it, choose its kind and what to be alerted on, and save it (POST /api/v1/zones: an
// operator action in the log). Zones are drawn on the map; alerts come from GET /api/v1/alerts and live over
// the websocket's `alerts` layer, newest first, with a toast for each new one.
import { api, can } from './api.js';
import { clock, t, tOr } from './i18n.js';
import { $, el, toast } from './util.js';

const KINDS = ['general', 'school', 'venue', 'cordon', 'underpass', 'flood', 'pipe', 'gas', 'fire'];
const RULES = {
  incident: { type: 'incident' },
  congestion: { type: 'congestion', level: 'moderate', for_s: 300 },
  unit_enter: { type: 'unit_enter' },
  unit_leave: { type: 'unit_leave' },
  sensor: { type: 'sensor' },
};
const MAX_ALERTS = 200;

export class ZonesPanel {
  constructor(cityMap) {
    this.cm = cityMap;
    this.box = $('zones');
    this.zones = [];
    this.alerts = new Map(); // id → alert, newest first by updated_at when listed
    this.draft = null;       // corners [[lng, lat], …] while drawing; {ring} once finished
    this.drawing = false;
  }

  toggle() { if (this.box.hidden) this.open(); else this.close(); }

  open() {
    this.box.hidden = false;
    this.render();
    this.load();
  }

  close() {
    this.box.hidden = true;
    this.cancelDraw();
  }

  relabel() { if (!this.box.hidden) this.render(); }

  async load() {
    try {
      const [zones, alerts, closures] = await Promise.all([api('/api/v1/zones'), api('/api/v1/alerts?limit=100'), api('/api/v1/closures')]);
      this.zones = zones || [];
      for (const a of (alerts || []).reverse()) this.alerts.set(a.id, a);
      this.showClosures(closures);
    } catch (e) {
      console.warn('zones:', e.message);
    }
    this.showZones();
    this.render();
  }

  // onAlerts takes a websocket {"type":"alerts"} message.
  onAlerts(list) {
    for (const a of list || []) {
      const fresh = !this.alerts.has(a.id);
      this.alerts.delete(a.id);
      this.alerts.set(a.id, a);
      if (fresh && a.status !== 'resolved') toast(t('alerts.new', { msg: a.message }), a.severity >= 4 ? 'err' : 'ok');
      if (a.rule === 'hazard') this.refreshClosures();
    }
    while (this.alerts.size > MAX_ALERTS) this.alerts.delete(this.alerts.keys().next().value);
    if (!this.box.hidden) this.render();
  }

  render() {
    const b = this.box;
    b.replaceChildren();
    const edit = can('zone.edit');
    const head = el('div', { class: 'panel-head' }, el('h2', { text: t('zones.title') }),
      el('button', { type: 'button', class: 'x', 'aria-label': t('common.close'), text: '×', onclick: () => this.close() }));
    b.append(head);
    const ctl = el('div', { class: 'zones-ctl' });
    if (this.draft?.ring) {
      ctl.append(this.form());
    } else if (this.drawing) {
      ctl.append(el('span', { class: 'muted', text: t('zones.drawing') + ` (${this.draft?.length || 0})` }),
        el('button', { type: 'button', id: 'zone-finish', class: 'primary', text: t('zones.finish'), onclick: () => this.finishDraw() }),
        el('button', { type: 'button', text: t('zones.cancel'), onclick: () => { this.cancelDraw(); this.render(); } }));
    } else {
      ctl.append(el('button', { type: 'button', id: 'zone-draw', title: edit ? t('zones.draw.tip') : t('zones.readonly'),
        disabled: !edit, text: t('zones.draw'), onclick: () => this.startDraw() }));
    }
    b.append(ctl);

    b.append(el('h3', { text: t('alerts.title') }));
    const al = el('ol', { id: 'alert-list', class: 'alert-list', 'data-empty': t('alerts.none') });
    for (const a of [...this.alerts.values()].reverse()) {
      al.append(el('li', { class: `alert ${a.status} sev${a.severity}`, 'data-id': a.id, 'data-zone': a.zone_id, 'data-rule': a.rule,
        onclick: () => this.cm.flyTo(a.lng, a.lat, 15) },
      el('span', { class: 'a-rule', text: tOr('alerts.rule.' + a.rule, a.rule) }),
      el('span', { class: 'a-status', text: tOr('alerts.status.' + a.status, a.status) }),
      el('span', { class: 'a-time', text: clock(a.fired_at) }),
      el('div', { class: 'a-msg', text: a.message }),
      a.closures?.length ? el('div', { class: 'a-close', text: t('alerts.closures', { n: a.closures.length }) }) : null));
    }
    b.append(al);

    b.append(el('h3', { text: t('zones.list') }));
    const zl = el('ul', { id: 'zone-list', class: 'zone-list', 'data-empty': t('zones.none') });
    for (const z of this.zones) {
      zl.append(el('li', { 'data-id': z.id },
        el('b', { text: z.name || z.id }), el('span', { class: 'muted', text: ' · ' + tOr('zones.kind.' + z.kind, z.kind) }),
        edit ? el('button', { type: 'button', class: 'small', text: t('zones.delete'), onclick: (e) => { e.stopPropagation(); this.remove(z); } }) : null));
    }
    b.append(zl);
  }

  form() {
    const name = el('input', { id: 'zone-name', value: t('zones.name.default', { n: this.zones.length + 1 }), maxlength: 200 });
    const kind = el('select', { id: 'zone-kind' }, KINDS.map((k) => el('option', { value: k, text: t('zones.kind.' + k) })));
    const boxes = Object.keys(RULES).map((r) => el('label', { class: 'rule' },
      el('input', { type: 'checkbox', name: 'rule', value: r, checked: r === 'incident' || r === 'sensor' }), ' ', t('zones.rule.' + r)));
    const f = el('form', { id: 'zone-form', autocomplete: 'off', onsubmit: (e) => { e.preventDefault(); this.save(name.value, kind.value, boxes); } },
      el('label', {}, el('span', { text: t('zones.name') }), ' ', name),
      el('label', {}, el('span', { text: t('zones.kind') }), ' ', kind),
      el('fieldset', {}, el('legend', { text: t('zones.rules') }), boxes),
      el('div', { class: 'row' }, el('button', { type: 'submit', id: 'zone-save', class: 'primary', text: t('zones.save') }),
        el('button', { type: 'button', text: t('zones.cancel'), onclick: () => { this.draft = null; this.showDraft(); this.render(); } })));
    return f;
  }

  async save(name, kind, boxes) {
    const rules = boxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => RULES[i.value]);
    try {
      const z = await api('/api/v1/zones', { method: 'POST', body: { name, kind, polygon: this.draft.ring, rules } });
      toast(t('zones.saved', { name: z.name }), 'ok');
      this.draft = null;
      this.showDraft();
      await this.load();
    } catch (e) {
      toast(e.message, 'err');
    }
  }

  async remove(z) {
    if (!confirm(t('zones.delete.confirm', { name: z.name || z.id }))) return;
    try {
      await api('/api/v1/zones/' + encodeURIComponent(z.id), { method: 'DELETE' });
      toast(t('zones.deleted', { name: z.name || z.id }), 'ok');
      await this.load();
    } catch (e) {
      toast(e.message, 'err');
    }
  }

  // ---------- drawing ----------
  startDraw() {
    const m = this.cm.map;
    this.drawing = true;
    this.draft = [];
    m.doubleClickZoom.disable();
    m.getCanvas().style.cursor = 'crosshair';
    toast(t('zones.draw.toast'), 'ok');
    const click = (e) => { this.draft.push([e.lngLat.lng, e.lngLat.lat]); this.showDraft(); this.render(); };
    const dbl = (e) => { e.preventDefault(); this.finishDraw(); };
    m.on('click', click);
    m.on('dblclick', dbl);
    this.undraw = () => { m.off('click', click); m.off('dblclick', dbl); };
    this.render();
  }

  finishDraw() {
    const pts = this.draft || [];
    this.stopDrawing();
    if (pts.length < 3) { toast(t('zones.few'), 'err'); this.draft = null; this.showDraft(); this.render(); return; }
    this.draft = { ring: [...pts, pts[0]] };
    this.showDraft();
    this.render();
  }

  cancelDraw() {
    this.stopDrawing();
    this.draft = null;
    this.showDraft();
  }

  stopDrawing() {
    if (!this.drawing) return;
    this.drawing = false;
    this.undraw?.();
    const m = this.cm.map;
    m.doubleClickZoom.enable();
    m.getCanvas().style.cursor = '';
  }

  // ---------- map ----------
  source(id, fc, fill, line) {
    const m = this.cm.map;
    if (!this.cm.loaded) return;
    if (!m.getSource(id)) {
      m.addSource(id, { type: 'geojson', data: fc });
      m.addLayer({ id: id + '-fill', type: 'fill', source: id, paint: { 'fill-color': fill, 'fill-opacity': 0.12 } });
      m.addLayer({ id: id + '-line', type: 'line', source: id, paint: { 'line-color': line, 'line-width': 2 } });
    } else m.getSource(id).setData(fc);
  }

  showZones() {
    const features = this.zones.filter((z) => z.polygon?.length >= 3).map((z) => ({ type: 'Feature', properties: { id: z.id, name: z.name },
      geometry: { type: 'Polygon', coordinates: [[...z.polygon, z.polygon[0]]] } }));
    this.source('zones', { type: 'FeatureCollection', features }, '#c77dff', '#c77dff');
  }

  // Links hazard alerts recommend closing (GET /api/v1/closures), drawn as red dashed lines; unit routing avoids
  // them. Shown whether or not the panel is open.
  async refreshClosures() {
    try { this.showClosures(await api('/api/v1/closures')); } catch (e) { console.warn('closures:', e.message); }
  }

  showClosures(fc) {
    const m = this.cm.map;
    if (!this.cm.loaded || !fc) return;
    if (!m.getSource('closures')) {
      m.addSource('closures', { type: 'geojson', data: fc });
      m.addLayer({ id: 'closures-line', type: 'line', source: 'closures',
        paint: { 'line-color': '#ff3b3b', 'line-width': 5, 'line-dasharray': [1, 1] } });
    } else m.getSource('closures').setData(fc);
  }

  showDraft() {
    const pts = this.draft?.ring || this.draft || [];
    const features = pts.length >= 3 ? [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...pts, pts[0]]] } }]
      : pts.length === 2 ? [{ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: pts } }] : [];
    this.source('zone-draft', { type: 'FeatureCollection', features }, '#ffd166', '#ffd166');
  }
}
