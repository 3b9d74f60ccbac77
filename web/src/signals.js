// Signal plans at an intersection (docs/signals.md), shown in the detail panel: the approaches with their live
// state (GET /api/v1/intersections/{id}), the recommended plan by Webster or max-pressure
// (GET …/plan?method=…: cycle, greens per phase, expected change in delay) and the officer's decision
// (POST …/plan {"decision": "accept"|"reject", "method", "note"}, police and admin), with the decisions so far
// (GET …/plans).
import { api, can, session } from './api.js';
import { $, clock, el, LEVEL_COLOR, LEVEL_LABEL, num, titleCase, toast } from './util.js';

const METHODS = { webster: 'Webster', max_pressure: 'Max-pressure' };
const SIDE = { N: 'North', S: 'South', E: 'East', W: 'West' };

function metric(label, value, cls) { return el('div', { class: cls }, el('label', { text: label }), el('b', { text: value })); }

export class IntersectionView {
  constructor(detail) {
    this.detail = detail;
    this.method = localStorage.getItem('cb_plan_method') || 'webster';
  }

  async open(id, window) {
    this.id = id;
    this.window = window;
    this.note = '';
    clearInterval(this.timer);
    this.detail.cur = { kind: 'intersection', id };
    this.detail.box.replaceChildren(this.detail.head(`Intersection ${id}`), el('div', { class: 'sub', style: 'padding-top:.7rem', text: 'Loading…' }));
    this.detail.box.hidden = false;
    await this.load();
    this.timer = setInterval(() => {
      if (this.detail.cur?.kind !== 'intersection' || this.detail.cur.id !== id || this.detail.box.hidden) { clearInterval(this.timer); return; }
      if (!this.detail.box.contains(document.activeElement)) this.load();
    }, 10_000);
  }

  async load() {
    const id = this.id, q = encodeURIComponent(id);
    const [node, plan, decisions] = await Promise.allSettled([
      api(`/api/v1/intersections/${q}?window=${this.window}`),
      api(`/api/v1/intersections/${q}/plan?method=${this.method}`),
      api(`/api/v1/intersections/${q}/plans`),
    ]);
    if (this.id !== id || this.detail.cur?.id !== id) return;
    this.node = node.value || null;
    this.plan = plan.value || null;
    this.planError = plan.reason?.message || null;
    this.decisions = decisions.value || [];
    this.render(node.reason);
  }

  render(nodeErr) {
    const n = this.node, p = this.plan;
    const title = `Intersection ${this.id}`;
    const head = this.detail.head(title);
    if (!n) {
      this.detail.box.replaceChildren(head, el('div', { class: 'sub', style: 'padding-top:.7rem', text: `Cannot load it: ${nodeErr?.message || 'unknown'}` }));
      return;
    }
    const byLink = new Map((p?.approaches || []).map((a) => [a.link, a]));
    const rows = n.approaches.map((a) => {
      const s = a.state, r = byLink.get(a.link) || {};
      const lvl = s?.level;
      return el('tr', {},
        el('td', {}, el('i', { class: 'dot', style: `background:${lvl ? LEVEL_COLOR[lvl] : '#475569'}`, title: lvl ? LEVEL_LABEL[lvl] : 'no data' }), SIDE[a.side] || a.side),
        el('td', { class: 'num', text: s?.speed_kmh != null ? num(s.speed_kmh, 0) : '—' }),
        el('td', { class: 'num', title: r.flow_source ? `flow from ${r.flow_source.replace('_', ' ')}` : '', text: r.flow_vph ? num(r.flow_vph, 0) + (r.flow_source === 'speed_model' ? '*' : '') : '—' }),
        el('td', { class: 'num', text: r.queue_veh != null ? num(r.queue_veh, 1) : '—' }),
        el('td', { class: 'num' + (r.degree_of_saturation > 0.9 ? ' hot' : ''), text: r.degree_of_saturation != null ? num(r.degree_of_saturation, 2) : '—' }));
    });
    const approaches = el('table', { class: 'appr' },
      el('thead', {}, el('tr', {}, ['Approach', 'km/h', 'veh/h', 'Queue', 'X'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows));
    const methodSel = el('select', { id: 'plan-method', 'aria-label': 'Plan method', onchange: (e) => {
      this.method = e.target.value; localStorage.setItem('cb_plan_method', this.method); this.load(); } },
    Object.entries(METHODS).map(([k, v]) => el('option', { value: k, selected: k === this.method, text: v })));
    const out = [head,
      el('div', { class: 'node-meta' }, el('span', { class: 'chip ' + (n.signalised ? 'sig' : ''), text: n.signalised ? 'Signalised' : 'No signal' }),
        el('span', { class: 'muted', text: `${n.approaches.length} approaches · window ${n.window}` })),
      approaches];
    if (!n.signalised) {
      out.push(el('div', { class: 'sub', text: 'No signal here: nothing to plan.' }));
      this.detail.box.replaceChildren(...out);
      return;
    }
    out.push(el('div', { class: 'plan-head' }, el('h3', { text: 'Recommended plan' }), methodSel));
    if (!p) {
      out.push(el('div', { class: 'sub', text: `No plan: ${this.planError || 'the server has none'}` }));
    } else {
      const ch = p.delay_change_pct;
      const cycleMax = Math.max(p.cycle_s, p.current_cycle_s || 0, 1);
      out.push(el('div', { class: 'metrics plan', id: 'plan' },
        metric('Cycle', `${num(p.cycle_s, 0)} s`), metric(`Now (${p.current_source})`, `${num(p.current_cycle_s, 0)} s`),
        metric('Delay / veh', `${num(p.delay_now_s, 0)} → ${num(p.delay_plan_s, 0)} s`),
        metric('Change', ch == null ? '—' : `${ch > 0 ? '+' : ''}${num(ch, 1)} %`, ch < -0.05 ? 'good' : ch > 0.05 ? 'bad' : '')),
      el('div', { class: 'phases' }, p.phases.map((ph, i) => el('div', { class: 'phase' + (p.method === 'max_pressure' && p.serve_now_phase === i ? ' now' : '') },
        el('span', { class: 'nm', text: ph.name }),
        el('div', { class: 'bars' },
          el('i', { class: 'plan', style: `width:${(ph.green_s / cycleMax) * 100}%`, title: `recommended ${num(ph.green_s, 0)} s` }),
          el('i', { class: 'cur', style: `width:${(ph.current_green_s / cycleMax) * 100}%`, title: `current ${num(ph.current_green_s, 0)} s` })),
        el('span', { class: 'gs', text: `${num(ph.green_s, 0)} s` }),
        el('span', { class: 'muted', text: `now ${num(ph.current_green_s, 0)} s` })))),
      el('div', { class: 'sub', text: `${METHODS[p.method] || p.method}: Y = ${num(p.y, 2)}${p.oversaturated ? ' (oversaturated)' : ''}, lost ${num(p.lost_s, 0)} s · ${p.method === 'max_pressure' ? `serve ${p.phases[p.serve_now_phase]?.name || '—'} now · ` : ''}bars: recommended / current · * flow from speed` }));
      const allowed = can('signal.plan');
      const roleMsg = session.who?.authenticated ? `Your role (${session.who.role}) may not decide signal plans` : 'Sign in to decide';
      const note = el('input', { id: 'plan-note', type: 'text', placeholder: 'Note (optional)', value: this.note, disabled: !allowed,
        oninput: (e) => { this.note = e.target.value; } });
      out.push(el('div', { class: 'plan-acts' }, note,
        el('button', { id: 'plan-accept', class: 'primary', type: 'button', disabled: !allowed, title: allowed ? 'Apply this plan at the intersection' : roleMsg, text: 'Accept', onclick: () => this.decide('accept') }),
        el('button', { id: 'plan-reject', type: 'button', disabled: !allowed, title: allowed ? 'Keep the current plan' : roleMsg, text: 'Reject', onclick: () => this.decide('reject') })));
      if (!allowed) out.push(el('div', { class: 'sub', text: roleMsg + ' (police, admin).' }));
    }
    if (this.decisions.length) {
      out.push(el('h3', { class: 'dec-h', text: 'Decisions' }), el('ul', { class: 'decisions' }, this.decisions.slice(0, 4).map((d) => el('li', { class: d.accepted ? 'acc' : 'rej' },
        el('b', { text: d.accepted ? 'Accepted' : 'Rejected' }),
        el('span', { text: `${METHODS[d.plan?.method] || d.plan?.method || ''} ${num(d.plan?.cycle_s, 0)} s` }),
        el('span', { class: 'muted', text: `${d.by} · ${clock(d.at)}` }),
        d.accepted && d.after ? el('span', { class: 'muted eff', text: `speed ${num(d.before.mean_speed_kmh, 0)} → ${num(d.after.mean_speed_kmh, 0)} km/h, queue ${num(d.before.queue_veh, 1)} → ${num(d.after.queue_veh, 1)}` }) : null))));
    }
    this.detail.box.replaceChildren(...out);
  }

  async decide(decision) {
    if (!can('signal.plan')) { toast('Your role may not decide signal plans.', 'err'); return; }
    try {
      const d = await api(`/api/v1/intersections/${encodeURIComponent(this.id)}/plan`, { method: 'POST',
        body: { decision, method: this.method, note: this.note || undefined } });
      toast(`Plan for ${this.id} ${d.accepted ? 'accepted' : 'rejected'} (${METHODS[this.method]}, cycle ${num(d.plan?.cycle_s, 0)} s).`, 'ok');
      this.note = '';
      await this.load();
    } catch (e) {
      toast(`Cannot ${decision} the plan: ${e.message}`, 'err');
    }
  }
}
void $; void titleCase;
