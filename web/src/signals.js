// Signal plans at an intersection (docs/signals.md), shown in the detail panel: the approaches with their live
// state (GET /api/v1/intersections/{id}), the recommended plan by Webster or max-pressure
// (GET …/plan?method=…: cycle, greens per phase, expected change in delay) and the officer's decision
// (POST …/plan {"decision": "accept"|"reject", "method", "note"}, police and admin), with the decisions so far
// (GET …/plans).
import { api, can, session } from './api.js';
import { $, clock, confidenceText, el, label, LEVEL_COLOR, LEVEL_LABEL, LOW_CONFIDENCE, num, titleCase, toast } from './util.js';
import { t } from './i18n.js';

const METHODS = ['webster', 'max_pressure'];
const method = (m) => label('method', m);
const side = (s) => label('side', s);

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
    this.detail.box.replaceChildren(this.detail.head(t('node.title', { id })), el('div', { class: 'sub', style: 'padding-top:.7rem', text: t('common.loading') }));
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

  render(nodeErr = this.nodeErr) {
    this.nodeErr = nodeErr;
    const n = this.node, p = this.plan;
    const title = t('node.title', { id: this.id });
    const head = this.detail.head(title);
    if (!n) {
      this.detail.box.replaceChildren(head, el('div', { class: 'sub', style: 'padding-top:.7rem', text: t('node.cannot', { msg: nodeErr?.message || '?' }) }));
      return;
    }
    const byLink = new Map((p?.approaches || []).map((a) => [a.link, a]));
    const rows = n.approaches.map((a) => {
      const s = a.state, r = byLink.get(a.link) || {};
      const lvl = s?.level;
      return el('tr', {},
        el('td', {}, el('i', { class: 'dot', style: `background:${lvl ? LEVEL_COLOR[lvl] : '#475569'}`, title: lvl ? LEVEL_LABEL[lvl] : t('common.nodata') }), side(a.side)),
        el('td', { class: 'num spd' + (s?.confidence < LOW_CONFIDENCE ? ' lowconf' : ''), title: s?.confidence != null ? `${t('f.confidence')} ${confidenceText(s.confidence)}` : '',
          text: s?.speed_kmh != null ? num(s.speed_kmh, 0) + (s.confidence < LOW_CONFIDENCE ? '?' : '') : '—' }),
        el('td', { class: 'num', title: r.flow_source ? t('node.flow_from', { src: label('flowsrc', r.flow_source) }) : '', text: r.flow_vph ? num(r.flow_vph, 0) + (r.flow_source === 'speed_model' ? '*' : '') : '—' }),
        el('td', { class: 'num', text: r.queue_veh != null ? num(r.queue_veh, 1) : '—' }),
        el('td', { class: 'num' + (r.degree_of_saturation > 0.9 ? ' hot' : ''), text: r.degree_of_saturation != null ? num(r.degree_of_saturation, 2) : '—' }));
    });
    const approaches = el('table', { class: 'appr' },
      el('thead', {}, el('tr', {}, [t('node.approach'), t('unit.kmh'), t('unit.vph'), t('node.queue'), 'X'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows));
    const methodSel = el('select', { id: 'plan-method', 'aria-label': t('node.method'), onchange: (e) => {
      this.method = e.target.value; localStorage.setItem('cb_plan_method', this.method); this.load(); } },
    METHODS.map((k) => el('option', { value: k, selected: k === this.method, text: method(k) })));
    const out = [head,
      el('div', { class: 'node-meta' }, el('span', { class: 'chip ' + (n.signalised ? 'sig' : ''), text: n.signalised ? t('node.signalised') : t('node.nosignal') }),
        el('span', { class: 'muted', text: t('node.meta', { n: n.approaches.length, w: t('win.' + n.window) }) })),
      approaches];
    if (!n.signalised) {
      out.push(el('div', { class: 'sub', text: t('node.noplan_nosignal') }));
      this.detail.box.replaceChildren(...out);
      return;
    }
    out.push(el('div', { class: 'plan-head' }, el('h3', { text: t('node.recommended') }), methodSel));
    if (!p) {
      out.push(el('div', { class: 'sub', text: t('node.noplan', { msg: this.planError || t('node.noplan_server') }) }));
    } else {
      const ch = p.delay_change_pct;
      const cycleMax = Math.max(p.cycle_s, p.current_cycle_s || 0, 1);
      out.push(el('div', { class: 'metrics plan', id: 'plan' },
        metric(t('node.cycle'), t('unit.s_v', { v: num(p.cycle_s, 0) })), metric(t('node.now_src', { src: label('cursrc', p.current_source) }), t('unit.s_v', { v: num(p.current_cycle_s, 0) })),
        metric(t('node.delay'), `${num(p.delay_now_s, 0)} → ${t('unit.s_v', { v: num(p.delay_plan_s, 0) })}`),
        metric(t('node.change'), ch == null ? '—' : `${ch > 0 ? '+' : ''}${num(ch, 1)} %`, ch < -0.05 ? 'good' : ch > 0.05 ? 'bad' : '')),
      el('div', { class: 'phases' }, p.phases.map((ph, i) => el('div', { class: 'phase' + (p.method === 'max_pressure' && p.serve_now_phase === i ? ' now' : '') },
        el('span', { class: 'nm', text: ph.name }),
        el('div', { class: 'bars' },
          el('i', { class: 'plan', style: `width:${(ph.green_s / cycleMax) * 100}%`, title: t('node.rec_s', { v: num(ph.green_s, 0) }) }),
          el('i', { class: 'cur', style: `width:${(ph.current_green_s / cycleMax) * 100}%`, title: t('node.cur_s', { v: num(ph.current_green_s, 0) }) })),
        el('span', { class: 'gs', text: t('unit.s_v', { v: num(ph.green_s, 0) }) }),
        el('span', { class: 'muted', text: t('node.now_s', { v: num(ph.current_green_s, 0) }) })))),
      el('div', { class: 'sub', text: t('node.sub', { m: method(p.method), y: num(p.y, 2), over: p.oversaturated ? t('node.over') : '', lost: num(p.lost_s, 0),
        serve: p.method === 'max_pressure' ? t('node.serve', { ph: p.phases[p.serve_now_phase]?.name || '—' }) : '' }) }));
      const allowed = can('signal.plan');
      const roleMsg = session.who?.authenticated ? t('role.no_plan', { role: label('role', session.who.role) }) : t('role.signin_plan');
      const note = el('input', { id: 'plan-note', type: 'text', placeholder: t('node.note'), value: this.note, disabled: !allowed,
        oninput: (e) => { this.note = e.target.value; } });
      out.push(el('div', { class: 'plan-acts' }, note,
        el('button', { id: 'plan-accept', class: 'primary', type: 'button', disabled: !allowed, title: allowed ? t('node.accept.tip') : roleMsg, text: t('node.accept'), onclick: () => this.decide('accept') }),
        el('button', { id: 'plan-reject', type: 'button', disabled: !allowed, title: allowed ? t('node.reject.tip') : roleMsg, text: t('node.reject'), onclick: () => this.decide('reject') })));
      if (!allowed) out.push(el('div', { class: 'sub', text: roleMsg + t('node.roles') }));
    }
    if (this.decisions.length) {
      out.push(el('h3', { class: 'dec-h', text: t('node.decisions') }), el('ul', { class: 'decisions' }, this.decisions.slice(0, 4).map((d) => el('li', { class: d.accepted ? 'acc' : 'rej' },
        el('b', { text: d.accepted ? t('node.accepted') : t('node.rejected') }),
        el('span', { text: `${d.plan?.method ? method(d.plan.method) : ''} ${t('unit.s_v', { v: num(d.plan?.cycle_s, 0) })}` }),
        el('span', { class: 'muted', text: `${d.by} · ${clock(d.at)}` }),
        d.accepted && d.after ? el('span', { class: 'muted eff', text: t('node.effect', { s0: num(d.before.mean_speed_kmh, 0), s1: num(d.after.mean_speed_kmh, 0), q0: num(d.before.queue_veh, 1), q1: num(d.after.queue_veh, 1) }) }) : null))));
    }
    this.detail.box.replaceChildren(...out);
  }

  async decide(decision) {
    if (!can('signal.plan')) { toast(t('role.no_plan_short'), 'err'); return; }
    try {
      const d = await api(`/api/v1/intersections/${encodeURIComponent(this.id)}/plan`, { method: 'POST',
        body: { decision, method: this.method, note: this.note || undefined } });
      toast(t(d.accepted ? 'node.toast_acc' : 'node.toast_rej', { id: this.id, m: method(this.method), c: num(d.plan?.cycle_s, 0) }), 'ok');
      this.note = '';
      await this.load();
    } catch (e) {
      toast(t(decision === 'accept' ? 'node.cannot_acc' : 'node.cannot_rej', { msg: e.message }), 'err');
    }
  }
}
void $; void titleCase;
