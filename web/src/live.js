// The /ws client (docs/websocket.md): hello → subscribe (viewport, resolution, window, layers) → snapshot →
// deltas. Sequence numbers are checked: a gap resubscribes with `since` (the server answers with a catch-up
// delta or a snapshot). A lost connection is retried with backoff and resumes the same way, so the view
// recovers after a server restart. An application ping every 10 s detects a dead connection within 25 s.
export class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.path = '/ws';        // the live city, or a replay session's /api/v1/replays/{id}/ws
    this.sub = null;          // the subscription to (re)send: {bbox, res, window, layers}
    this.seq = null;          // last seq applied
    this.baseRes = 9;
    this.state = 'connecting';
    this.attempt = 0;
    this.awaiting = false;    // a subscribe is unanswered: its answer may jump in seq
    this.lastMsg = 0;
    this.lastData = 0;
    this.pingTimer = null;
    this.retryTimer = null;
    this.stopped = false;
    this.unsupported = new Set(); // layers the server refused ("unknown layer")
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  setState(s, info = {}) {
    this.state = s;
    this.emit('state', { state: s, attempt: this.attempt, ...info });
  }

  start() {
    this.stopped = false;
    this.connect();
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.heartbeat(), 5000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
  }

  connect() {
    clearTimeout(this.retryTimer);
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${proto}://${location.host}${this.path}`);
    } catch (e) {
      this.scheduleRetry(String(e));
      return;
    }
    this.ws = ws;
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.scheduleRetry(ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`), ev.code);
    };
  }

  scheduleRetry(reason, code) {
    this.attempt++;
    // 0.5 s, 1 s, 2 s, 4 s, then every 5 s, with jitter so a wall of screens does not reconnect in step.
    const delay = Math.min(5000, 500 * 2 ** Math.min(this.attempt - 1, 4)) * (0.8 + Math.random() * 0.4);
    this.setState(this.attempt > 20 ? 'offline' : 'reconnecting', { reason, code, retryIn: delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // switchTo follows another timeline (a replay session, or the live city again): a fresh connection and a
  // fresh snapshot, never a resume across timelines.
  switchTo(path) {
    this.path = path;
    this.seq = null;
    this.instance = undefined;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    const old = this.ws;
    this.ws = null;
    if (old) old.close(1000, 'switching timeline');
    if (!this.stopped) this.connect();
  }

  heartbeat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastMsg > 25000) { // no pong: the connection is dead without having said so
      ws.close(4000, 'no answer to ping');
      if (this.ws === ws) { this.ws = null; this.scheduleRetry('no answer from server'); }
      return;
    }
    if (Date.now() - this.lastMsg > 9000) ws.send('{"op":"ping"}');
  }

  // subscribe sets the viewport; it is sent now if connected, and on every (re)connection.
  subscribe(sub) {
    const fresh = !this.sub || this.sub.res !== sub.res || this.sub.window !== sub.window;
    this.sub = sub;
    if (fresh) this.seq = null; // another resolution or window: a snapshot, not a resume
    this.sendSub(false);
  }

  sendSub(resume) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.sub) return;
    const layers = this.sub.layers.filter((l) => !this.unsupported.has(l));
    const m = { op: 'subscribe', bbox: this.sub.bbox, res: this.sub.res, window: this.sub.window, layers, geometry: true };
    if (resume && this.seq != null) m.since = this.seq;
    this.awaiting = true;
    ws.send(JSON.stringify(m));
  }

  onMessage(data) {
    this.lastMsg = Date.now();
    let m;
    try { m = JSON.parse(data); } catch { return; }
    switch (m.type) {
      case 'hello': {
        this.baseRes = m.base_res ?? 9;
        // Resume only on what looks like the same timeline: a restarted server may count from elsewhere.
        const resume = this.seq != null && m.seq >= this.seq && (!m.instance || m.instance === this.instance);
        this.instance = m.instance;
        if (!resume) this.seq = null;
        this.attempt = 0;
        this.emit('hello', m);
        this.setState('live');
        this.sendSub(resume);
        break;
      }
      case 'snapshot':
        this.awaiting = false;
        this.seq = m.seq;
        this.lastData = Date.now();
        this.emit('snapshot', m);
        break;
      case 'delta':
        if (!this.awaiting && this.seq != null && m.seq !== this.seq + 1 && m.seq > this.seq) {
          // A gap: ask for what was missed, keep the current picture meanwhile.
          this.emit('gap', { from: this.seq, to: m.seq });
          this.sendSub(true);
          return;
        }
        this.awaiting = false;
        this.seq = m.seq;
        this.lastData = Date.now();
        this.emit('delta', m);
        break;
      case 'error': {
        const u = /unknown layer "([^"]+)"/.exec(m.error || '');
        if (u && this.sub) {
          this.unsupported.add(u[1]);
          this.emit('unsupported', u[1]);
          this.sendSub(false);
          return;
        }
        this.emit('servererror', m.error);
        break;
      }
      case 'pong':
        break;
      default:
        this.emit(m.type, m); // future message types (e.g. replay position)
    }
  }
}
