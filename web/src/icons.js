// Map and panel icons drawn on a canvas: no image files, no icon font, no outside request. Each icon is made
// once at 2× for the map (map.addImage with pixelRatio 2) and as a data URL for the panels.
const S = 64; // drawing size in canvas pixels (shown at 32 CSS px on the map)

export const INCIDENT_STYLE = {
  crash: ['#e5343b', 'burst'], fire: ['#ff7a1a', 'flame'], fire_smoke: ['#ff7a1a', 'flame'],
  medical: ['#d6336c', 'cross'], flood: ['#2f8cff', 'waves'], hazard: ['#f5a524', 'bang'],
  debris: ['#f5a524', 'bang'], road_closure: ['#a855f7', 'bar'], stalled_vehicle: ['#f97316', 'car'],
  wrong_way: ['#e11d48', 'arrows'], pedestrian: ['#14b8a6', 'person'], congestion: ['#eab308', 'queue'],
  queue: ['#eab308', 'queue'], speed_drop: ['#eab308', 'queue'], other: ['#64748b', 'bang'],
};
export const UNIT_STYLE = {
  ambulance: ['#f8fafc', 'cross', '#d6336c'], police: ['#1d4ed8', 'star', '#fff'], fire: ['#dc2626', 'flame', '#fff'],
  tow: ['#57534e', 'hook', '#fff'], rescue: ['#ea580c', 'ring', '#fff'],
};
export const UNIT_STATUS_COLOR = { available: '#22c55e', dispatched: '#f5a524', en_route: '#f5a524', on_scene: '#ef4444', busy: '#64748b', offline: '#334155' };

function canvas() {
  const c = document.createElement('canvas');
  c.width = c.height = S;
  return [c, c.getContext('2d')];
}

function glyph(g, kind, color) {
  g.fillStyle = color; g.strokeStyle = color; g.lineCap = 'round'; g.lineJoin = 'round';
  const c = S / 2;
  switch (kind) {
    case 'burst': {
      g.beginPath();
      for (let i = 0; i < 16; i++) {
        const r = i % 2 ? 7 : 15, a = (i / 16) * Math.PI * 2 - Math.PI / 2;
        g.lineTo(c + r * Math.cos(a), c + r * Math.sin(a));
      }
      g.closePath(); g.fill(); break;
    }
    case 'flame':
      g.beginPath(); g.moveTo(c, c - 15);
      g.bezierCurveTo(c + 14, c - 3, c + 12, c + 14, c, c + 15);
      g.bezierCurveTo(c - 12, c + 14, c - 13, c, c - 4, c - 6);
      g.bezierCurveTo(c - 3, c, c, c + 1, c + 1, c - 3);
      g.bezierCurveTo(c + 3, c - 8, c, c - 12, c, c - 15); g.fill(); break;
    case 'cross':
      g.fillRect(c - 4.5, c - 13, 9, 26); g.fillRect(c - 13, c - 4.5, 26, 9); break;
    case 'waves':
      g.lineWidth = 4;
      for (const dy of [-8, 0, 8]) {
        g.beginPath(); g.moveTo(c - 14, c + dy);
        g.bezierCurveTo(c - 7, c + dy - 6, c - 3, c + dy + 6, c + 3, c + dy);
        g.bezierCurveTo(c + 8, c + dy - 6, c + 11, c + dy + 4, c + 14, c + dy); g.stroke();
      }
      break;
    case 'bang':
      g.beginPath(); g.roundRect(c - 3.5, c - 15, 7, 20, 3); g.fill();
      g.beginPath(); g.arc(c, c + 11, 4, 0, Math.PI * 2); g.fill(); break;
    case 'bar':
      g.beginPath(); g.roundRect(c - 14, c - 4.5, 28, 9, 2); g.fill(); break;
    case 'car':
      g.beginPath(); g.roundRect(c - 15, c - 3, 30, 11, 3); g.fill();
      g.beginPath(); g.roundRect(c - 9, c - 11, 18, 10, 3); g.fill();
      g.beginPath(); g.arc(c - 8, c + 9, 3.5, 0, 7); g.arc(c + 8, c + 9, 3.5, 0, 7); g.fill(); break;
    case 'arrows':
      g.lineWidth = 4;
      g.beginPath(); g.moveTo(c - 13, c - 5); g.lineTo(c + 11, c - 5); g.moveTo(c + 5, c - 11); g.lineTo(c + 12, c - 5); g.lineTo(c + 5, c + 1);
      g.moveTo(c + 13, c + 6); g.lineTo(c - 11, c + 6); g.moveTo(c - 5, c); g.lineTo(c - 12, c + 6); g.lineTo(c - 5, c + 12); g.stroke(); break;
    case 'person':
      g.beginPath(); g.arc(c, c - 11, 4.5, 0, 7); g.fill(); g.lineWidth = 4;
      g.beginPath(); g.moveTo(c, c - 5); g.lineTo(c, c + 5); g.lineTo(c - 6, c + 15); g.moveTo(c, c + 5); g.lineTo(c + 6, c + 15);
      g.moveTo(c - 8, c - 1); g.lineTo(c + 8, c - 1); g.stroke(); break;
    case 'queue':
      for (const dy of [-11, -2, 7]) { g.beginPath(); g.roundRect(c - 12, c + dy, 24, 6, 2); g.fill(); }
      break;
    case 'star': {
      g.beginPath();
      for (let i = 0; i < 10; i++) {
        const r = i % 2 ? 6 : 14, a = (i / 10) * Math.PI * 2 - Math.PI / 2;
        g.lineTo(c + r * Math.cos(a), c + r * Math.sin(a));
      }
      g.closePath(); g.fill(); break;
    }
    case 'hook':
      g.lineWidth = 4.5; g.beginPath(); g.moveTo(c, c - 14); g.lineTo(c, c + 3); g.arc(c - 6, c + 3, 6, 0, Math.PI); g.stroke(); break;
    case 'ring':
      g.lineWidth = 6; g.beginPath(); g.arc(c, c, 10, 0, 7); g.stroke(); break;
    case 'lens':
      g.beginPath(); g.arc(c, c, 9, 0, 7); g.fill(); break;
    default:
  }
}

function incidentCanvas(type) {
  const [color, kind] = INCIDENT_STYLE[type] || INCIDENT_STYLE.other;
  const [cv, g] = canvas();
  g.shadowColor = 'rgba(0,0,0,.6)'; g.shadowBlur = 6;
  g.beginPath(); g.arc(S / 2, S / 2, 26, 0, Math.PI * 2); g.fillStyle = color; g.fill();
  g.shadowBlur = 0; g.lineWidth = 4; g.strokeStyle = '#fff'; g.stroke();
  glyph(g, kind, '#fff');
  return cv;
}

function unitCanvas(type, status) {
  const [bg, kind, fg] = UNIT_STYLE[type] || UNIT_STYLE.rescue;
  const [cv, g] = canvas();
  g.shadowColor = 'rgba(0,0,0,.6)'; g.shadowBlur = 5;
  g.beginPath(); g.roundRect(8, 8, 48, 48, 10); g.fillStyle = UNIT_STATUS_COLOR[status] || UNIT_STATUS_COLOR.busy; g.fill();
  g.shadowBlur = 0;
  g.beginPath(); g.roundRect(14, 14, 36, 36, 7); g.fillStyle = bg; g.fill();
  g.save(); g.translate(S / 2, S / 2); g.scale(0.78, 0.78); g.translate(-S / 2, -S / 2); glyph(g, kind, fg); g.restore();
  return cv;
}

function sensorCanvas(kind) {
  const [cv, g] = canvas();
  g.shadowColor = 'rgba(0,0,0,.6)'; g.shadowBlur = 4;
  if (kind === 'camera') {
    g.beginPath(); g.roundRect(14, 20, 36, 26, 6); g.fillStyle = '#0ea5e9'; g.fill();
    g.shadowBlur = 0; g.lineWidth = 3; g.strokeStyle = '#e0f2fe'; g.stroke();
    g.beginPath(); g.arc(32, 33, 7, 0, 7); g.fillStyle = '#e0f2fe'; g.fill();
  } else if (kind === 'sensor') {
    g.beginPath(); g.arc(32, 32, 16, 0, 7); g.fillStyle = '#f59e0b'; g.fill();
    g.shadowBlur = 0; g.lineWidth = 3; g.strokeStyle = '#fef3c7'; g.stroke();
    g.beginPath(); g.arc(32, 32, 5, 0, 7); g.fillStyle = '#fef3c7'; g.fill();
  } else {
    g.beginPath(); g.moveTo(32, 12); g.lineTo(52, 32); g.lineTo(32, 52); g.lineTo(12, 32); g.closePath();
    g.fillStyle = '#8b5cf6'; g.fill(); g.shadowBlur = 0; g.lineWidth = 3; g.strokeStyle = '#ede9fe'; g.stroke();
  }
  return cv;
}

const urlCache = new Map();
export function incidentIconURL(type) {
  const k = 'inc-' + (INCIDENT_STYLE[type] ? type : 'other');
  if (!urlCache.has(k)) urlCache.set(k, incidentCanvas(type).toDataURL());
  return urlCache.get(k);
}
export function unitIconURL(type, status) {
  const k = `unit-${type}-${status}`;
  if (!urlCache.has(k)) urlCache.set(k, unitCanvas(type, status).toDataURL());
  return urlCache.get(k);
}
export function sensorIconURL(kind) {
  const k = 'sensor-' + kind;
  if (!urlCache.has(k)) urlCache.set(k, sensorCanvas(kind).toDataURL());
  return urlCache.get(k);
}

const imageData = (cv) => cv.getContext('2d').getImageData(0, 0, S, S);

// addMapImages registers every icon with the map; missing ones (new types) are made on demand.
export function addMapImages(map) {
  for (const t of Object.keys(INCIDENT_STYLE)) map.addImage('inc-' + t, imageData(incidentCanvas(t)), { pixelRatio: 2 });
  for (const t of Object.keys(UNIT_STYLE)) {
    for (const s of Object.keys(UNIT_STATUS_COLOR)) map.addImage(`unit-${t}-${s}`, imageData(unitCanvas(t, s)), { pixelRatio: 2 });
  }
  map.addImage('sensor-camera', imageData(sensorCanvas('camera')), { pixelRatio: 2 });
  map.addImage('sensor-detector', imageData(sensorCanvas('detector')), { pixelRatio: 2 });
  map.addImage('sensor-sensor', imageData(sensorCanvas('sensor')), { pixelRatio: 2 });
  map.on('styleimagemissing', (e) => {
    const id = e.id;
    if (map.hasImage(id)) return;
    let cv;
    if (id.startsWith('inc-')) cv = incidentCanvas('other');
    else if (id.startsWith('unit-')) { const [, t, s] = id.split('-'); cv = unitCanvas(t, s); }
    else cv = sensorCanvas('detector');
    map.addImage(id, imageData(cv), { pixelRatio: 2 });
  });
}
