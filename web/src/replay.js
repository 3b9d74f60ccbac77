// Replay (docs/replay.md), for planners: create a session over a past time range (POST /api/v1/replays), switch
// the map to the session's websocket (GET /api/v1/replays/{id}/ws, the /ws protocol), drive it from the time
// bar (POST /api/v1/replays/{id}/{play|pause|seek|speed|close}) and return to live. The session is polled
// (GET /api/v1/replays/{id}) every second for its position; when it is gone (closed, expired) the map goes back
// to live. A server started as `citybrain replay --http` shows its own session in /api/v1/status ("replay"):
// then the bar drives that one and there is no live to return to.
import { api, can, session } from './api.js';
import { $, el, toast } from './util.js';
import { clock, dateTime, num, t, zoneOffsetMs } from './i18n.js';

// The form's datetime-local inputs are in the city's time zone (not the browser's): an operator in another
// zone still types the city's clock times.
// localInput formats an instant for <input type="datetime-local"> in the city's zone.
const localInput = (ms) => new Date(ms + zoneOffsetMs(ms)).toISOString().slice(0, 19);
// fromInput reads a datetime-local value as city time.
function fromInput(v) {
  const asUTC = Date.parse(v + 'Z');
  if (Number.isNaN(asUTC)) return new Date(NaN);
  return new Date(asUTC - zoneOffsetMs(asUTC - zoneOffsetMs(asUTC)));
}

export class Replay extends EventTarget {
  constructor(live) {
    super();
    this.live = live;
    this.id = null;      // the session shown
    this.own = false;    // created here (we switched the websocket to it)
    this.info = null;
    this.bar = $('timebar');
    $('tb-play').addEventListener('click', () => this.control(this.playing() ? 'pause' : 'play'));
    $('tb-speed').addEventListener('change', (e) => this.control('speed', { speed: Number(e.target.value) }));
    $('tb-seek').addEventListener('change', (e) => {
      const from = Date.parse(this.info?.from), to = Date.parse(this.info?.to);
      if (!(to > from)) return;
      this.control('seek', { at: new Date(from + ((to - from) * e.target.value) / 1000).toISOString() });
    });
    $('tb-live').addEventListener('click', () => this.exit());
    $('replay-open').addEventListener('click', () => this.toggleForm());
    $('replay-form').addEventListener('submit', (e) => { e.preventDefault(); this.create(); });
    $('replay-cancel').addEventListener('click', () => { $('replay-form').hidden = true; });
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
  get active() { return !!this.id; }
  playing() { return this.info?.state === 'playing' || this.info?.playing === true; }

  allow() {
    const ok = can('replay.control');
    const b = $('replay-open');
    b.disabled = !ok || (this.active && !this.own);
    b.title = ok ? t('replay.open.tip') : t('role.no_replay', { role: session.who?.role ? t('role.' + session.who.role) : t('user.readonly') });
  }

  toggleForm(eventNow) {
    const f = $('replay-form');
    if (!f.hidden) { f.hidden = true; return; }
    const now = this.eventNow?.() || Date.now();
    $('replay-from').value = localInput(now - 10 * 60_000);
    $('replay-to').value = localInput(now);
    f.hidden = false;
    $('replay-from').focus();
    void eventNow;
  }

  async create() {
    const from = fromInput($('replay-from').value), to = fromInput($('replay-to').value);
    if (!(to > from)) { toast(t('replay.order'), 'err'); return; }
    const sv = Number($('replay-speed').value);
    const speed = Number.isFinite(sv) && sv >= 0 ? sv : 10; // 0: as fast as the machine goes ("max")
    $('replay-start').disabled = true;
    try {
      const s = await api('/api/v1/replays', { method: 'POST', body: { from: from.toISOString(), to: to.toISOString(), speed, paused: false } });
      $('replay-form').hidden = true;
      if (this.own && this.id) this.close(this.id);
      this.enter(s, true);
      toast(t('replay.started', { from: clock(from), to: clock(to), x: num(speed) }), 'ok');
    } catch (e) {
      toast(t('replay.cannot', { msg: e.message }), 'err');
    } finally {
      $('replay-start').disabled = false;
    }
  }

  // enter shows a session; own: switch the map's websocket to it.
  enter(s, own) {
    this.id = s.id;
    this.own = own;
    document.documentElement.classList.add('replaying');
    if (own) this.live.switchTo(s.ws || `/api/v1/replays/${encodeURIComponent(s.id)}/ws`);
    this.show(s);
    clearInterval(this.timer);
    if (own) this.timer = setInterval(() => this.poll(), 1000);
    this.emit('enter', s);
    this.allow();
  }

  async poll() {
    const id = this.id;
    if (!id) return;
    try {
      const s = await api(`/api/v1/replays/${encodeURIComponent(id)}`);
      if (this.id === id) this.show(s);
    } catch (e) {
      if (e.status === 404 && this.id === id) { toast(t('replay.ended'), 'ok'); this.exit(false); }
    }
  }

  // fromStatus follows the "replay" object of /api/v1/status (a `citybrain replay --http` server).
  fromStatus(r) {
    if (this.own) return;
    if (!r || !r.id) { if (this.id) this.leave(); return; }
    if (this.id !== r.id) this.enter(r, false); else this.show(r);
  }

  show(r) {
    this.info = r;
    this.bar.hidden = false;
    const from = Date.parse(r.from), to = Date.parse(r.to), pos = Date.parse(r.position);
    $('tb-from').textContent = clock(from);
    $('tb-from').title = dateTime(from, { seconds: true, zone: true });
    $('tb-to').textContent = clock(to);
    $('tb-to').title = dateTime(to, { seconds: true, zone: true });
    $('tb-pos').textContent = clock(pos);
    $('tb-pos').title = dateTime(pos, { seconds: true, zone: true });
    const st = r.state || (r.playing ? 'playing' : 'paused');
    $('tb-state').textContent = t('rstate.' + st);
    $('tb-state').dataset.state = st;
    $('tb-play').textContent = this.playing() ? '❚❚' : '▶';
    $('tb-play').setAttribute('aria-label', this.playing() ? t('tb.pause') : t('tb.play'));
    if (document.activeElement !== $('tb-seek') && to > from && pos) $('tb-seek').value = Math.round(((pos - from) / (to - from)) * 1000);
    const sp = String(r.speed ?? 1);
    if (![...$('tb-speed').options].some((o) => o.value === sp)) $('tb-speed').append(el('option', { value: sp, text: sp }));
    if (document.activeElement !== $('tb-speed')) $('tb-speed').value = sp;
    for (const id of ['tb-play', 'tb-speed', 'tb-seek']) $(id).disabled = !can('replay.control');
    $('tb-live').hidden = !this.own;
  }

  async control(action, body) {
    if (!this.id) return;
    try {
      const r = await api(`/api/v1/replays/${encodeURIComponent(this.id)}/${action}`, { method: 'POST', body: body || {} });
      if (r && r.id) this.show(r);
    } catch (e) { toast(t('replay.action_failed', { action: t('tb.' + action), msg: e.message }), 'err'); }
  }

  async close(id) {
    try { await api(`/api/v1/replays/${encodeURIComponent(id)}/close`, { method: 'POST', body: {} }); } catch { /* gone already */ }
  }

  relabel() {
    this.allow();
    if (this.info) this.show(this.info);
  }

  // exit returns the map to the live city (closing our session unless it is gone already).
  exit(closeIt = true) {
    const id = this.id;
    if (!id) return;
    if (closeIt && this.own) this.close(id);
    const own = this.own;
    this.leave();
    if (own) this.live.switchTo('/ws');
    this.emit('exit');
  }

  leave() {
    clearInterval(this.timer);
    this.id = null;
    this.own = false;
    this.info = null;
    this.bar.hidden = true;
    document.documentElement.classList.remove('replaying');
    this.allow();
  }
}
