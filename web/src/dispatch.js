// Emergency dispatch in the incident panel (docs/emergency.md): for the selected incident, the three available
// units with the shortest live travel time (GET /api/v1/incidents/{id}/units?k=3, routed by the server) with
// their ETA and route; the commander picks one (the best by default) and sends it (POST /api/v1/dispatch).
// Then the dispatch is followed (GET /api/v1/dispatches/{id} every 2 s): ETA, progress, the route on the map
// and the green wave (the signalised intersections ahead, in order, with the time each should turn green).
import { api, can, session } from './api.js';
import { unitIconURL } from './icons.js';
import { $, clock, el, label, toast } from './util.js';
import { distance, duration, num, t } from './i18n.js';

const OPEN = (d) => d && !d.closed_at && d.status !== 'cleared' && d.status !== 'cancelled';

export const fmtETA = duration;
const km = distance;

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
      this.error = e.status === 404 || e.status === 405 || e.status === 503 ? t('dispatch.noroute') : e.message;
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
      toast((session.who?.authenticated ? t('role.no_dispatch', { role: label('role', session.who.role) }) : t('role.signin_dispatch')) + t('punct.stop'), 'err');
      return;
    }
    if (this.byIncident.has(inc.id)) { toast(t('dispatch.already', { unit: this.byIncident.get(inc.id).unit_id }), 'err'); return; }
    let unit = inc.id === this.inc?.id ? this.choice : null;
    try {
      if (!unit) {
        const opts = await api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/units?k=1`);
        unit = opts[0]?.unit_id;
      }
      if (!unit) { toast(t('dispatch.nounit'), 'err'); return; }
      this.busy = true;
      this.render();
      const d = await api('/api/v1/dispatch', { method: 'POST', body: { incident_id: inc.id, unit_id: unit } });
      this.byIncident.set(inc.id, d);
      toast(t('dispatch.sent', { type: label('unit', d.unit_type), unit: d.unit_id, eta: fmtETA(d.eta_s), dist: km(d.route_length_m) }), 'ok');
      this.emit('dispatched', d);
      if (inc.id === this.inc?.id) this.follow(d.id, d);
    } catch (e) {
      const msg = e.status === 409 ? t('dispatch.conflict', { msg: e.message }) : e.status === 404 || e.status === 405 ? t('dispatch.noaccept') : e.message;
      toast(t('dispatch.failed', { msg }), 'err');
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
      toast(t('dispatch.cancelled', { unit: d.unit_id }), 'ok');
      const inc = this.inc;
      this.inc = null;
      this.show(inc);
    } catch (e) { toast(t('dispatch.cancel_failed', { msg: e.message }), 'err'); }
  }

  render() {
    if (!this.inc || this.box.hidden) return;
    const allowed = can('incident.dispatch');
    const roleMsg = session.who?.authenticated ? t('role.no_dispatch', { role: label('role', session.who.role) }) : t('role.signin_dispatch');
    const head = el('div', { class: 'dp-head' }, el('h3', { text: this.track ? t('dispatch.dispatched') : t('dispatch.nearest') }),
      el('span', { class: 'muted', text: this.track ? `${this.track.unit_id} → ${label('inc', this.inc.type)}` : t('dispatch.bytime') }));
    if (this.track) { this.box.replaceChildren(head, ...this.trackBody(this.track, allowed)); return; }
    const active = this.inc.status === 'suspected' || this.inc.status === 'confirmed';
    let body;
    if (!active) body = el('div', { class: 'dp-note', text: t('dispatch.inactive', { status: label('status', this.inc.status) }) });
    else if (this.options == null) body = el('div', { class: 'dp-note', text: t('dispatch.routing') });
    else if (this.error) body = el('div', { class: 'dp-note err', text: this.error });
    else if (!this.options.length) body = el('div', { class: 'dp-note', text: t('dispatch.nounit') });
    else {
      const best = this.options[0].eta_s;
      body = el('ol', { class: 'dp-opts', role: 'listbox', 'aria-label': t('dispatch.byeta') }, this.options.map((o, i) => el('li', {
        class: 'opt' + (o.unit_id === this.choice ? ' sel' : ''), 'data-unit': o.unit_id, role: 'option', 'aria-selected': o.unit_id === this.choice ? 'true' : 'false',
        tabindex: '0', onclick: () => this.choose(o.unit_id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.stopPropagation(); this.choose(o.unit_id); } },
      },
      el('img', { src: unitIconURL(o.type, 'available'), alt: '' }),
      el('div', { class: 'who' }, el('b', { text: o.unit_id }), el('span', { text: label('unit', o.type) })),
      el('div', { class: 'eta' }, el('b', { class: 'eta-v', text: fmtETA(o.eta_s) }),
        el('span', { text: i === 0 ? t('dispatch.fastest', { dist: km(o.route_length_m) }) : t('dispatch.slower', { dist: km(o.route_length_m), d: fmtETA(o.eta_s - best) }) })))));
    }
    const chosen = this.options?.find((o) => o.unit_id === this.choice);
    const send = el('button', { id: 'dispatch-send', class: 'primary', type: 'button',
      disabled: !allowed || !active || !chosen || this.busy, title: allowed ? t('dispatch.send.tip') : roleMsg,
      text: chosen ? t('dispatch.send_unit', { unit: chosen.unit_id }) : t('queue.dispatch'), onclick: () => this.send() });
    this.box.replaceChildren(head, body, el('div', { class: 'dp-acts' }, send,
      allowed ? null : el('span', { class: 'muted small', text: roleMsg + t('punct.stop') })));
  }

  trackBody(d, allowed) {
    const open = OPEN(d);
    const pct = Math.round((d.progress || 0) * 100);
    const status = d.arrived_at ? 'on_scene' : d.status;
    const wave = (d.green_wave || []);
    const now = Date.now();
    return [
      el('div', { class: 'dp-track' },
        el('img', { src: unitIconURL(d.unit_type, open ? 'en_route' : 'available'), alt: '' }),
        el('div', { class: 'who' }, el('b', { text: d.unit_id }), el('span', { class: 'chip ' + (d.status || ''), text: label('dstatus', status) })),
        el('div', { class: 'eta' }, el('b', { class: 'eta-v', id: 'dispatch-eta', text: d.arrived_at ? t('dispatch.arrived') : fmtETA(d.eta_s) }),
          el('span', { text: d.arrived_at ? clock(d.arrived_at) : t('dispatch.at', { t: clock(d.eta_at) }) }))),
      el('div', { class: 'dp-prog', title: t('dispatch.progress', { p: num(pct), dist: km(d.route_length_m) }) }, el('i', { style: `width:${pct}%` })),
      el('div', { class: 'dp-meta' }, el('span', { text: t('dispatch.progress', { p: num(pct), dist: km(d.route_length_m) }) }),
        el('span', { text: t('dispatch.first_eta', { eta: fmtETA(d.initial_eta_s) }) }), d.reroutes ? el('span', { text: t('dispatch.reroutes', { n: d.reroutes }) }) : null),
      el('h4', { text: wave.length ? t('dispatch.wave_ahead', { n: wave.filter((g) => !g.passed).length }) : t('legend.wave') }),
      wave.length ? el('ol', { class: 'dp-wave' }, wave.map((g) => {
        const at = Date.parse(g.green_at), dt = Math.round((at - now) / 1000);
        return el('li', { class: g.passed ? 'passed' : (dt <= 0 && now < Date.parse(g.hold_until) ? 'green' : ''), 'data-node': g.node_id, title: g.controller_msg || '' },
          el('b', { class: 'n', text: String(g.order) }),
          el('span', { class: 'node', text: `${g.node_id}${g.side ? t('dispatch.from_side', { side: t('side.' + g.side) }) : ''}` }),
          el('span', { class: 'gt', text: g.passed ? t('wave.passed') : t('wave.green', { t: clock(g.green_at) }) }),
          el('span', { class: 'in', text: g.passed ? '' : dt > 0 ? t('dispatch.in', { d: fmtETA(dt) }) : t('dispatch.now') }));
      })) : el('div', { class: 'dp-note', text: t('dispatch.nowave') }),
      el('div', { class: 'dp-acts' },
        open && allowed ? el('button', { type: 'button', id: 'dispatch-cancel', text: t('dispatch.cancel'), onclick: () => this.cancel() }) : null,
        el('span', { class: 'muted small', text: t('dispatch.by', { who: d.by || '—', t: clock(d.created_at) }) })),
    ];
  }
}
