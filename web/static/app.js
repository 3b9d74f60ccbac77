// CityBrain live congestion map: H3 cells drawn on a canvas from /ws snapshots and deltas.
// No library and no outside request: positions are projected with Web Mercator here.
(function () {
  'use strict';
  const COLORS = { smooth: '#2e9e4f', basically_smooth: '#a4c639', light: '#f2c14e', moderate: '#f0803c', severe: '#d7263d' };
  const canvas = document.getElementById('map');
  const ctx = canvas.getContext('2d');
  const $ = (id) => document.getElementById(id);
  const cells = new Map();      // cell id -> cell object (with boundary)
  let view = { lng: 120.17, lat: 30.26, zoom: 13 };  // centre and zoom (256px tiles)
  let ws = null, lastSeq = null, fitted = false, selected = null, retry = 500;

  const proj = (lng, lat) => {
    const s = 256 * Math.pow(2, view.zoom);
    const x = (lng + 180) / 360 * s;
    const y = (1 - Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360)) / Math.PI) / 2 * s;
    return [x, y];
  };
  const unproj = (x, y) => {
    const s = 256 * Math.pow(2, view.zoom);
    const lng = x / s * 360 - 180;
    const lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * y / s))) * 180 / Math.PI;
    return [lng, lat];
  };
  const toScreen = (lng, lat) => {
    const [cx, cy] = proj(view.lng, view.lat);
    const [x, y] = proj(lng, lat);
    return [x - cx + canvas.width / 2, y - cy + canvas.height / 2];
  };
  const toLngLat = (sx, sy) => {
    const [cx, cy] = proj(view.lng, view.lat);
    return unproj(sx - canvas.width / 2 + cx, sy - canvas.height / 2 + cy);
  };
  const bbox = () => {
    const [w, n] = toLngLat(0, 0), [e, s] = toLngLat(canvas.width, canvas.height);
    return [Math.max(-180, w), Math.max(-85, s), Math.min(180, e), Math.min(85, n)];
  };
  const resForZoom = () => Math.max(5, Math.min(9, Math.round(view.zoom - 4)));

  function resize() {
    canvas.width = canvas.clientWidth * devicePixelRatio;
    canvas.height = canvas.clientHeight * devicePixelRatio;
    draw();
  }

  function draw() {
    ctx.fillStyle = '#0b1016';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    let sum = 0, n = 0;
    for (const c of cells.values()) {
      if (!c.boundary) continue;
      ctx.beginPath();
      c.boundary.forEach(([lng, lat], i) => { const [x, y] = toScreen(lng, lat); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.closePath();
      ctx.globalAlpha = c.speed_kmh === null ? 0.25 : (c.low_samples ? 0.55 : 0.85);
      ctx.fillStyle = COLORS[c.level] || '#666';
      ctx.fill();
      ctx.globalAlpha = 1;
      if (selected === c.cell) { ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.stroke(); }
      if (c.speed_kmh !== null) { sum += c.speed_kmh * c.samples; n += c.samples; }
    }
    $('ncells').textContent = cells.size;
    $('mspeed').textContent = n ? (sum / n).toFixed(1) + ' km/h' : '—';
  }

  function showDetail() {
    const d = $('detail');
    const c = selected && cells.get(selected);
    if (!c) { d.hidden = true; return; }
    d.hidden = false;
    d.innerHTML = '<b>' + c.cell + '</b><br>' +
      'level <b>' + c.level.replace('_', ' ') + '</b> (TPI ' + c.tpi + ')<br>' +
      'speed ' + (c.speed_kmh === null ? '—' : c.speed_kmh + ' km/h') + ' / free flow ' + c.free_flow_kmh + ' km/h (' + c.free_flow_source + ')<br>' +
      'samples ' + c.samples + (c.low_samples ? ' (too few: weak estimate)' : '') + ', events ' + c.events + '<br>' +
      (c.flow_vph !== null ? 'detector flow ' + c.flow_vph + ' veh/h, occupancy ' + c.occupancy + '<br>' : '') +
      'updated ' + c.updated_at;
  }

  function subscribe() {
    if (!ws || ws.readyState !== 1) return;
    const msg = { op: 'subscribe', bbox: bbox(), res: resForZoom(), window: $('window').value, layers: ['cells'], geometry: true };
    if (lastSeq !== null && msg.res === subscribe.res && msg.window === subscribe.window) msg.since = lastSeq;
    subscribe.res = msg.res; subscribe.window = msg.window;
    ws.send(JSON.stringify(msg));
  }
  let subTimer = null;
  const resubscribe = () => { clearTimeout(subTimer); subTimer = setTimeout(() => { lastSeq = null; cells.clear(); subscribe(); }, 150); };

  function fit() {
    if (fitted || cells.size === 0) return;
    let w = 180, s = 90, e = -180, n = -90;
    for (const c of cells.values()) { w = Math.min(w, c.lng); e = Math.max(e, c.lng); s = Math.min(s, c.lat); n = Math.max(n, c.lat); }
    view.lng = (w + e) / 2; view.lat = (s + n) / 2;
    for (view.zoom = 17; view.zoom > 3; view.zoom--) {
      const [x0, y0] = toScreen(w, n), [x1, y1] = toScreen(e, s);
      if (x1 - x0 < canvas.width * 0.9 && y1 - y0 < canvas.height * 0.9) break;
    }
    fitted = true;
    resubscribe();
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = new URLSearchParams(location.search).get('token');
    ws = new WebSocket(proto + '//' + location.host + '/ws' + (token ? '?access_token=' + encodeURIComponent(token) : ''));
    ws.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'conn up'; retry = 500; subscribe(); };
    ws.onclose = (ev) => {
      $('conn').textContent = 'reconnecting' + (ev.reason ? ' (' + ev.reason + ')' : '');
      $('conn').className = 'conn down';
      setTimeout(connect, retry); retry = Math.min(retry * 2, 8000);
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'snapshot') { cells.clear(); }
      if (m.type === 'snapshot' || m.type === 'delta') {
        for (const c of m.cells) cells.set(c.cell, c);
        for (const id of m.removed || []) cells.delete(id);
        lastSeq = m.seq;
        $('now').textContent = m.now ? m.now.slice(11, 19) + 'Z' : '—';
        $('wm').textContent = m.watermark ? m.watermark.slice(11, 19) + 'Z' : '—';
        fit(); draw(); showDetail();
      } else if (m.type === 'error') {
        console.warn('server:', m.error);
      }
    };
  }

  let drag = null;
  canvas.addEventListener('mousedown', (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
  window.addEventListener('mouseup', (e) => {
    if (drag && !drag.moved) pick(e);
    if (drag && drag.moved) resubscribe();
    drag = null;
  });
  window.addEventListener('mousemove', (e) => {
    if (!drag) return;
    const dx = (e.clientX - drag.x) * devicePixelRatio, dy = (e.clientY - drag.y) * devicePixelRatio;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    const [lng, lat] = toLngLat(canvas.width / 2 - dx, canvas.height / 2 - dy);
    view.lng = lng; view.lat = lat; drag.x = e.clientX; drag.y = e.clientY;
    draw();
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    view.zoom = Math.max(3, Math.min(18, view.zoom + (e.deltaY < 0 ? 0.5 : -0.5)));
    draw(); resubscribe();
  }, { passive: false });
  function pick(e) {
    const r = canvas.getBoundingClientRect();
    const x = (e.clientX - r.left) * devicePixelRatio, y = (e.clientY - r.top) * devicePixelRatio;
    selected = null;
    for (const c of cells.values()) {
      if (!c.boundary) continue;
      ctx.beginPath();
      c.boundary.forEach(([lng, lat], i) => { const [px, py] = toScreen(lng, lat); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
      ctx.closePath();
      if (ctx.isPointInPath(x, y)) { selected = c.cell; break; }
    }
    draw(); showDetail();
  }
  $('window').addEventListener('change', resubscribe);
  window.addEventListener('resize', resize);
  resize();
  connect();
})();
