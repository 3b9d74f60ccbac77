// The incident queue: active incidents sorted by score, with their evidence and the operator's actions
// (confirm, dismiss, dispatch), driven by the mouse or the keyboard. Incidents come from
// GET /api/v1/incidents (polled) and from the websocket's incidents layer when the server sends one.
import { api, can, session, HTTPError } from './api.js';
import { incidentIconURL, INCIDENT_STYLE } from './icons.js';
import { $, el, ago, clock, label, toast, num } from './util.js';
import { t } from './i18n.js';

const SEV_COLOR = ['#64748b', '#a3d65c', '#f6d04d', '#f7893b', '#ef4444', '#d61f69'];
const NEW_MS = 90_000; // an incident pulses for this long after it first appears in this session

export class Queue extends EventTarget {
  constructor() {
    super();
    this.items = new Map(); // id → incident
    this.firstSeen = new Map();
    this.selected = null;
    this.filter = 'active';
    this.list = $('queue-list');
    this.loadedOnce = false;
    this.available = true;
    $('queue-filter').addEventListener('change', (e) => { this.filter = e.target.value; this.refresh(); });
    this.list.addEventListener('click', (e) => this.onClick(e));
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  start() {
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), 3000);
    clearInterval(this.tick);
    this.tick = setInterval(() => this.render(), 5000); // ages and pulses
  }

  async refresh() {
    if (this.paused) return; // replaying: incidents come from the session's websocket
    try {
      const list = await api(`/api/v1/incidents?status=${this.filter}`);
      this.available = true;
      this.replace(Array.isArray(list) ? list : list.incidents || []);
    } catch (e) {
      if (e instanceof HTTPError && (e.status === 404 || e.status === 405)) {
        this.available = false;
        this.render();
      }
    }
  }

  // replace sets the whole list (REST); merge applies changed incidents (websocket).
  replace(list) {
    const seen = new Set();
    for (const inc of list) { this.upsert(inc); seen.add(inc.id); }
    for (const id of [...this.items.keys()]) if (!seen.has(id)) this.items.delete(id);
    this.loadedOnce = true;
    this.render();
  }

  merge(list) {
    for (const inc of list) this.upsert(inc);
    this.render();
  }

  upsert(inc) {
    if (!this.firstSeen.has(inc.id)) {
      // Incidents already there when the page opened are not "new".
      this.firstSeen.set(inc.id, this.loadedOnce ? Date.now() : 0);
    }
    this.items.set(inc.id, inc);
  }

  isActive(inc) { return inc.status === 'suspected' || inc.status === 'confirmed'; }

  sorted() {
    return [...this.items.values()]
      .filter((i) => this.filter === 'all' || this.isActive(i))
      .sort((a, b) => (b.score - a.score) || String(b.detected_at).localeCompare(String(a.detected_at)));
  }

  isNew(id) {
    const t = this.firstSeen.get(id);
    return t > 0 && Date.now() - t < NEW_MS;
  }

  activeCount() { return [...this.items.values()].filter((i) => this.isActive(i)).length; }

  render() {
    const items = this.sorted();
    if (this.selected && !items.some((i) => i.id === this.selected)) this.selected = null;
    const note = $('queue-note');
    note.hidden = this.available;
    note.textContent = t('queue.none');
    $('queue-count').textContent = this.activeCount();
    $('queue-count').classList.toggle('hot', this.activeCount() > 0);
    // Keyed update: an item is rebuilt only when what it shows changed, and nodes move only when the order
    // changed, so a click or a keyboard selection is never lost to a refresh.
    const now = Date.now();
    this.nodes ||= new Map();
    const keep = new Set();
    items.forEach((inc, i) => {
      const key = JSON.stringify([inc.status, inc.score, inc.severity, inc.type, inc.detected_at, (inc.evidence || []).length,
        inc.id === this.selected, this.isNew(inc.id), can('incident.update'), this.canDispatch?.(inc), Math.floor(now / 30000)]);
      let n = this.nodes.get(inc.id);
      if (!n) {
        n = { key, el: this.renderItem(inc, now) };
        this.nodes.set(inc.id, n);
      } else if (n.key !== key) {
        // The item's node stays (a pointer on it, a click in flight or a test's locator keeps its target);
        // its attributes and content are those of a fresh rendering.
        patchNode(n.el, this.renderItem(inc, now));
        n.key = key;
      }
      keep.add(inc.id);
      if (this.list.children[i] !== n.el) this.list.insertBefore(n.el, this.list.children[i] || null);
    });
    for (const [id, n] of this.nodes) if (!keep.has(id)) { n.el.remove(); this.nodes.delete(id); }
    this.emit('change', items);
  }

  renderItem(inc, now) {
    const sel = inc.id === this.selected;
    const type = label('inc', inc.type || 'incident');
    const detected = Date.parse(inc.detected_at || inc.first_evidence_at);
    const allowed = can('incident.update');
    const roleMsg = session.who?.authenticated ? t('role.no_incident', { role: label('role', session.who.role) }) : t('role.signin_incident');
    const active = this.isActive(inc);
    const li = el('li', {
      class: 'inc' + (sel ? ' sel' : '') + (this.isNew(inc.id) ? ' new' : ''), 'data-id': inc.id, 'data-status': inc.status,
      style: `--sev:${SEV_COLOR[inc.severity] || SEV_COLOR[3]}`, 'aria-selected': sel ? 'true' : 'false',
    },
    el('img', { class: 'ico', src: incidentIconURL(INCIDENT_STYLE[inc.type] ? inc.type : 'other'), alt: '' }),
    el('div', { class: 't1' }, el('span', { text: `${type}` + (inc.severity ? ` · S${inc.severity}` : '') }),
      el('span', { class: 'score', title: t('queue.score'), text: num(inc.score, 2) })),
    el('div', { class: 'bar' }, el('i', { style: `width:${Math.round((inc.score || 0) * 100)}%` })),
    el('div', { class: 't2' },
      el('span', { class: 'chip ' + inc.status, text: label('status', inc.status) }),
      el('span', { text: detected ? t('queue.detected', { t: clock(detected) }) : '' }),
      el('span', { text: detected ? ago(this.eventNow ? this.eventNow - detected : now - detected) : '' }),
      el('span', { text: t('queue.evidence', { n: (inc.evidence || []).length }) })),
    el('ul', { class: 'ev' }, (inc.evidence || []).slice(0, 8).map((ev) => el('li', {},
      el('b', { text: label('kind', ev.kind) }), el('span', { text: ev.type ? label('inc', ev.type) : '' }), el('span', { text: ev.id }),
      el('span', { style: 'margin-left:auto', text: clock(ev.ts) })))),
    el('div', { class: 'acts' },
      el('button', { class: 'confirm', type: 'button', 'data-act': 'confirmed', disabled: !allowed || inc.status === 'confirmed' || !active,
        title: allowed ? t('queue.confirm.tip') : roleMsg, text: t('queue.confirm') }),
      el('button', { class: 'dismiss', type: 'button', 'data-act': 'dismissed', disabled: !allowed || !active,
        title: allowed ? t('queue.dismiss.tip') : roleMsg, text: t('queue.dismiss') }),
      el('button', { class: 'dispatch', type: 'button', 'data-act': 'dispatch', disabled: !can('incident.dispatch') || !active || !this.canDispatch?.(inc),
        title: can('incident.dispatch') ? (this.canDispatch?.(inc) ? t('queue.dispatch.tip') : t('queue.dispatch.nounits')) : t('role.no_dispatch_short'),
        text: t('queue.dispatch') })));
    return li;
  }

  onClick(e) {
    const li = e.target.closest('.inc');
    if (!li) return;
    const act = e.target.closest('button')?.dataset.act;
    if (act) { this.act(li.dataset.id, act); return; }
    this.select(li.dataset.id, true);
  }

  select(id, locate = false) {
    this.selected = id;
    this.render();
    const li = this.list.querySelector(`.inc[data-id="${CSS.escape(id || '')}"]`);
    li?.scrollIntoView({ block: 'nearest' });
    this.emit('select', { incident: this.items.get(id), locate });
  }

  move(delta) {
    const items = this.sorted();
    if (!items.length) return;
    let i = items.findIndex((x) => x.id === this.selected);
    i = i < 0 ? (delta > 0 ? 0 : items.length - 1) : Math.max(0, Math.min(items.length - 1, i + delta));
    this.select(items[i].id, false);
  }

  async act(id, action) {
    const inc = this.items.get(id || this.selected);
    if (!inc) return;
    if (action === 'dispatch') { this.emit('dispatch', inc); return; }
    if (!can('incident.update')) {
      toast((session.who?.authenticated ? t('role.no_incident', { role: label('role', session.who.role) }) : t('role.signin_incident')) + t('punct.stop'), 'err');
      return;
    }
    try {
      const updated = await api(`/api/v1/incidents/${encodeURIComponent(inc.id)}`, { method: 'POST', body: { status: action } });
      this.upsert(updated && updated.id ? updated : { ...inc, status: action });
      toast(t('queue.acted', { type: label('inc', inc.type), status: label('status', action) }), 'ok');
      this.render();
    } catch (e) {
      const msg = e.status === 404 || e.status === 405 ? t('queue.noaccept') : e.message;
      toast(t('queue.act_failed', { type: label('inc', inc.type), status: label('status', action), msg }), 'err');
    }
  }
}

// patchNode makes node show what fresh shows, keeping node and, where the structure is the same, its
// descendants in place (a button under the pointer survives an update of its row's score or age): attributes
// and text are copied, a child of another tag or a different number of children is replaced.
function patchNode(node, fresh) {
  if (node.nodeType === Node.TEXT_NODE) {
    if (node.nodeValue !== fresh.nodeValue) node.nodeValue = fresh.nodeValue;
    return;
  }
  for (const a of [...node.attributes]) if (!fresh.hasAttribute(a.name)) node.removeAttribute(a.name);
  for (const a of fresh.attributes) if (node.getAttribute(a.name) !== a.value) node.setAttribute(a.name, a.value);
  const kids = node.childNodes, fkids = [...fresh.childNodes];
  if (kids.length !== fkids.length) { node.replaceChildren(...fkids); return; }
  fkids.forEach((f, i) => {
    const k = kids[i];
    if (k.nodeType === f.nodeType && k.nodeName === f.nodeName && (k.nodeType === Node.ELEMENT_NODE || k.nodeType === Node.TEXT_NODE)) patchNode(k, f);
    else k.replaceWith(f);
  });
}
