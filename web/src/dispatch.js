// Emergency dispatch in the incident panel (docs/emergency.md): for the selected incident, the three available
// units with the shortest live travel time (GET /api/v1/incidents/{id}/units?k=3, routed by the server) with
// their ETA and route; the commander picks one (the best by default) and sends it (POST /api/v1/dispatch).
// Then the dispatch is followed (GET /api/v1/dispatches/{id} every 2 s): ETA, progress, the route on the map
// and the green wave (the signalised intersections ahead, in order, with the time each should turn green).
import { api, can, session } from './api.js';
import { unitIconURL } from './icons.js';
import { $, clock, el, titleCase, toast } from './util.js';

const OPEN = (d) => d && !d.closed_at && d.status !== 'cleared' && d.status !== 'cancelled';

export function fmtETA(s) {
  if (s == null || Number.isNaN(s)) return '—';
  s = Math.max(0, Math.round(s));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}
const km = (m) => (m == null ? '—' : m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`);

export class DispatchPanel extends EventTarget {
  constructor(cityMap) {
    super();
    this.map = cityMap;
    this.box = $('dispatch');
    this.inc = null;
    this.options = null;
    this.choice = null;
    this.byIncident = new Map(); // incident id → open dispatch (from GET /api/v1/dispatches and our own)
    this.track = null;           // the dispatch followed (full, with route and green wave)
    this.unavailable = false;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  start() {
    this.loadOpen();
    clearInterval(this.listTimer);
    this.listTimer = setInterval(() => this.loadOpen(), 10_000);
  }

  // loadOpen learns the open dispatches, so an incident dispatched from another screen shows its unit.
  async loadOpen() {
    if (this.unavailable) return;
    try {
      const list = await api('/api/v1/dispatches');
      this.byIncident.clear();
      for (const d of list) if (OPEN(d) && !this.byIncident.has(d.incident_id)) this.byIncident.set(d.incident_id, d);
      if (this.inc && !this.track && this.byIncident.has(this.inc.id)) this.follow(this.byIncident.get(this.inc.id).id);
    } catch (e) {
      if (e.status === 404 || e.status === 405 || e.status === 503) this.unavailable = true;
    }
  }

  // show opens the panel for an incident (null closes it).
  show(inc) {
    if (inc?.id === this.inc?.id && !this.box.hidden) { this.inc = inc; return; }
    this.stop();
    this.inc = inc;
    this.options = null;
    this.choice = null;
    this.track = null;
    this.map.setRoutes([]);
    this.map.setWave([], clock);
    if (!inc || this.unavailable) { this.box.hidden = true; return; }
    this.box.hidden = false;
    const open = this.byIncident.get(inc.id);
    if (open) { this.follow(open.id); return; }
    this.render();
    if (inc.status === 'suspected' || inc.status === 'confirmed') {
      this.loadOptions();
      this.optTimer = setInterval(() => { if (!this.track) this.loadOptions(); }, 10_000);
    }
  }

  stop() {
    clearInterval(this.optTimer);
    clearInterval(this.trackTimer);
    this.optTimer = this.trackTimer = null;
  }

  async loadOptions() {
    const id = this.inc?.id;
    if (!id) return;
    try {
      const opts = await api(`/api/v1/incidents/${encodeURIComponent(id)}/units?k=3`);
      if (this.inc?.id !== id || this.track) return;
      this.options = opts;
      this.error = null;
      if (!opts.some((o) => o.unit_id === this.choice)) this.choice = opts[0]?.unit_id ?? null;
    } catch (e) {
      if (this.inc?.id !== id) return;
      this.options = [];
      this.error = e.status === 404 || e.status === 405 || e.status === 503 ? 'The server does not route units here.' : e.message;
    }
    this.drawOptions();
    this.render();
  }

  drawOptions() {
    if (this.track) return;
    this.map.setRoutes((this.options || []).filter((o) => o.route).map((o) => ({ type: 'Feature', geometry: o.route,
      properties: { id: 'opt-' + o.unit_id, kind: 'option', best: o.unit_id === this.choice } })));
  }

  choose(unitId) {
    this.choice = unitId;
    this.drawOptions();
    this.render();
  }

  // send dispatches the chosen unit (or, for an incident not shown here, the best one) to inc.
  async send(inc = this.inc) {
    if (!inc) return;
    if (!can('incident.dispatch')) {
      toast(session.who?.authenticated ? `Your role (${session.who.role}) may not dispatch.` : 'Sign in to dispatch.', 'err');
      return;
    }
    if (this.byIncident.has(inc.id)) { toast(`${this.byIncident.get(inc.id).unit_id} is already on its way.`, 'err'); return; }
    let unit = inc.id === this.inc?.id ? this.choice : null;
    try {
      if (!unit) {
        const opts = await api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/units?k=1`);
        unit = opts[0]?.unit_id;
      }
      if (!unit) { toast('No available unit can reach this incident.', 'err'); return; }
      this.busy = true;
      this.render();
      const d = await api('/api/v1/dispatch', { method: 'POST', body: { incident_id: inc.id, unit_id: unit } });
      this.byIncident.set(inc.id, d);
      toast(`${titleCase(d.unit_type)} ${d.unit_id} dispatched — ETA ${fmtETA(d.eta_s)} (${km(d.route_length_m)}).`, 'ok');
      this.emit('dispatched', d);
      if (inc.id === this.inc?.id) this.follow(d.id, d);
    } catch (e) {
      const msg = e.status === 409 ? `${e.message} (pick another unit)` : e.status === 404 || e.status === 405 ? 'the server does not accept dispatch' : e.message;
      toast(`Dispatch failed: ${msg}`, 'err');
      if (e.status === 409) this.loadOptions();
    } finally {
      this.busy = false;
      this.render();
    }
  }

  // follow polls a dispatch every 2 s and shows it.
  follow(id, first) {
    this.stop();
    const poll = async () => {
      try {
        const d = await api(`/api/v1/dispatches/${encodeURIComponent(id)}`);
        if (this.inc?.id !== d.incident_id) return;
        this.apply(d);
        if (!OPEN(d)) { clearInterval(this.trackTimer); this.byIncident.delete(d.incident_id); }
      } catch (e) {
        if (e.status === 404) { clearInterval(this.trackTimer); this.track = null; this.render(); }
      }
    };
    if (first && first.route) this.apply(first);
    poll();
    this.trackTimer = setInterval(poll, 2000);
  }

  apply(d) {
    this.track = d;
    const route = d.route?.geometry ? d.route : null;
    this.map.setRoutes(route ? [{ ...route, properties: { ...route.properties, id: d.id, kind: 'dispatch' } }] : []);
    this.map.setWave(d.green_wave || [], (t) => clock(t));
    this.render();
    this.emit('track', d);
  }

  async cancel() {
    const d = this.track;
    if (!d) return;
    try {
      await api(`/api/v1/dispatches/${encodeURIComponent(d.id)}`, { method: 'POST', body: { status: 'cancelled', note: 'cancelled from the command center' } });
      this.byIncident.delete(d.incident_id);
      toast(`Dispatch of ${d.unit_id} cancelled.`, 'ok');
      const inc = this.inc;
      this.inc = null;
      this.show(inc);
    } catch (e) { toast(`Cannot cancel: ${e.message}`, 'err'); }
  }

  render() {
    if (!this.inc || this.box.hidden) return;
    const allowed = can('incident.dispatch');
    const roleMsg = session.who?.authenticated ? `Your role (${session.who.role}) may not dispatch` : 'Sign in to dispatch';
    const head = el('div', { class: 'dp-head' }, el('h3', { text: this.track ? 'Dispatched' : 'Nearest units' }),
      el('span', { class: 'muted', text: this.track ? `${this.track.unit_id} → ${titleCase(this.inc.type)}` : 'by live travel time' }));
    if (this.track) { this.box.replaceChildren(head, ...this.trackBody(this.track, allowed)); return; }
    const active = this.inc.status === 'suspected' || this.inc.status === 'confirmed';
    let body;
    if (!active) body = el('div', { class: 'dp-note', text: `This incident is ${this.inc.status}: nothing to dispatch.` });
    else if (this.options == null) body = el('div', { class: 'dp-note', text: 'Routing the nearest units…' });
    else if (this.error) body = el('div', { class: 'dp-note err', text: this.error });
    else if (!this.options.length) body = el('div', { class: 'dp-note', text: 'No available unit can reach this incident.' });
    else {
      const best = this.options[0].eta_s;
      body = el('ol', { class: 'dp-opts', role: 'listbox', 'aria-label': 'Units by ETA' }, this.options.map((o, i) => el('li', {
        class: 'opt' + (o.unit_id === this.choice ? ' sel' : ''), 'data-unit': o.unit_id, role: 'option', 'aria-selected': o.unit_id === this.choice ? 'true' : 'false',
        tabindex: '0', onclick: () => this.choose(o.unit_id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.stopPropagation(); this.choose(o.unit_id); } },
      },
      el('img', { src: unitIconURL(o.type, 'available'), alt: '' }),
      el('div', { class: 'who' }, el('b', { text: o.unit_id }), el('span', { text: titleCase(o.type) })),
      el('div', { class: 'eta' }, el('b', { class: 'eta-v', text: fmtETA(o.eta_s) }),
        el('span', { text: i === 0 ? `${km(o.route_length_m)} · fastest` : `${km(o.route_length_m)} · +${fmtETA(o.eta_s - best)}` })))));
    }
    const chosen = this.options?.find((o) => o.unit_id === this.choice);
    const send = el('button', { id: 'dispatch-send', class: 'primary', type: 'button',
      disabled: !allowed || !active || !chosen || this.busy, title: allowed ? 'Dispatch the chosen unit (D)' : roleMsg,
      text: chosen ? `Dispatch ${chosen.unit_id}` : 'Dispatch', onclick: () => this.send() });
    this.box.replaceChildren(head, body, el('div', { class: 'dp-acts' }, send,
      allowed ? null : el('span', { class: 'muted small', text: roleMsg + '.' })));
  }

  trackBody(d, allowed) {
    const open = OPEN(d);
    const pct = Math.round((d.progress || 0) * 100);
    const status = d.arrived_at ? 'on scene' : d.status;
    const wave = (d.green_wave || []);
    const now = Date.now();
    return [
      el('div', { class: 'dp-track' },
        el('img', { src: unitIconURL(d.unit_type, open ? 'en_route' : 'available'), alt: '' }),
        el('div', { class: 'who' }, el('b', { text: d.unit_id }), el('span', { class: 'chip ' + (d.status || ''), text: titleCase(status) })),
        el('div', { class: 'eta' }, el('b', { class: 'eta-v', id: 'dispatch-eta', text: d.arrived_at ? 'arrived' : fmtETA(d.eta_s) }),
          el('span', { text: d.arrived_at ? clock(d.arrived_at) : `at ${clock(d.eta_at)}` }))),
      el('div', { class: 'dp-prog', title: `${pct} % of ${km(d.route_length_m)}` }, el('i', { style: `width:${pct}%` })),
      el('div', { class: 'dp-meta' }, el('span', { text: `${pct} % of ${km(d.route_length_m)}` }),
        el('span', { text: `first ETA ${fmtETA(d.initial_eta_s)}` }), d.reroutes ? el('span', { text: `${d.reroutes} re-route${d.reroutes > 1 ? 's' : ''}` }) : null),
      el('h4', { text: wave.length ? (() => { const n = wave.filter((g) => !g.passed).length; return `Green wave · ${n} signal${n === 1 ? '' : 's'} ahead`; })() : 'Green wave' }),
      wave.length ? el('ol', { class: 'dp-wave' }, wave.map((g) => {
        const t = Date.parse(g.green_at), dt = Math.round((t - now) / 1000);
        return el('li', { class: g.passed ? 'passed' : (dt <= 0 && now < Date.parse(g.hold_until) ? 'green' : ''), 'data-node': g.node_id, title: g.controller_msg || '' },
          el('b', { class: 'n', text: String(g.order) }),
          el('span', { class: 'node', text: `${g.node_id}${g.side ? ` · from ${g.side}` : ''}` }),
          el('span', { class: 'gt', text: g.passed ? 'passed' : `green ${clock(g.green_at)}` }),
          el('span', { class: 'in', text: g.passed ? '' : dt > 0 ? `in ${fmtETA(dt)}` : 'now' }));
      })) : el('div', { class: 'dp-note', text: 'No signalised intersection on the route.' }),
      el('div', { class: 'dp-acts' },
        open && allowed ? el('button', { type: 'button', id: 'dispatch-cancel', text: 'Cancel dispatch', onclick: () => this.cancel() }) : null,
        el('span', { class: 'muted small', text: `by ${d.by || '—'} · ${clock(d.created_at)}` })),
    ];
  }
}
