// Test harness: starts the real citybrain binary with an auth configuration (admin, commander, police,
// viewer, feed tokens) and drives Debian's chromium through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const BIN = process.env.CITYBRAIN_BIN || path.join(repo, 'bin/citybrain');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const TOKENS = { admin: 'test-admin-token', commander: 'test-commander-token', police: 'test-police-token',
  viewer: 'test-viewer-token', planner: 'test-planner-token', feed: 'test-feed-token' };

// tempDir makes a directory under the system's temporary directory for this test file. They are all removed
// when the file's process exits cleanly; a failed run keeps them (server logs, data) and says where, as does
// CITYBRAIN_KEEP_TEST_DIRS=1.
const tempDirs = [];
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
process.on('exit', (code) => {
  if (tempDirs.length === 0) return;
  if (code !== 0 || process.exitCode || process.env.CITYBRAIN_KEEP_TEST_DIRS) {
    console.error(`test directories kept: ${tempDirs.join(' ')}`);
    return;
  }
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// startServer runs `citybrain run` on a free loopback port (or the given one) and waits until /healthz is ok.
export async function startServer({ demo = true, port, dir, extra = [] } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: go build -o bin/citybrain ./cmd/citybrain`);
  dir ||= tempDir('citybrain-web-');
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const auth = path.join(dir, 'auth.json');
  fs.writeFileSync(auth, JSON.stringify({ tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: `test-${role}`, role, token })) }));
  port ||= await freePort();
  const args = ['run', '--http', `127.0.0.1:${port}`, '--data', data, '--nats-listen', '127.0.0.1:0', '--auth', auth, `--demo=${demo}`, ...extra];
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const proc = spawn(BIN, args, { stdio: ['ignore', log, log] });
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`citybrain exited (${JSON.stringify(exited)}): ${fs.readFileSync(path.join(dir, 'server.log'), 'utf8').slice(-2000)}`);
    try {
      const r = await fetch(url + '/healthz');
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('citybrain did not become healthy in 60 s'); }
    await sleep(200);
  }
  return {
    url, port, dir, proc,
    log: () => fs.readFileSync(path.join(dir, 'server.log'), 'utf8'),
    async stop() {
      if (exited) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await done;
      clearTimeout(t);
    },
  };
}

export async function apiCall(server, p, { token = TOKENS.admin, method = 'GET', body, contentType = 'application/json' } = {}) {
  const r = await fetch(server.url + p, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

export function launchBrowser() {
  // playwright's launch() gives the browser a fresh, temporary --user-data-dir of its own.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader'],
  });
}

// openApp opens the command center in a new context, signs in with the role's token (none: read-only), and
// collects console errors, page errors and requests to any other host.
export async function openApp(browser, server, role, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  // Actions (click, fill) wait up to 90 s, not playwright's 30: on a loaded 2-core machine the map's
  // re-renders can keep a target detaching for longer; every wait that judges the app names its own limit.
  context.setDefaultTimeout(90_000);
  const page = await context.newPage();
  const problems = { console: [], page: [], external: [] };
  // A failed resource's message does not name it: its location does, so a failure says which request it was.
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const at = m.location()?.url;
    problems.console.push(at && /^Failed to load resource/.test(m.text()) ? `${m.text()} [${at}]` : m.text());
  });
  page.on('pageerror', (e) => problems.page.push(e.message));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:') && !u.startsWith(server.url.replace('http', 'ws'))) problems.external.push(u);
  });
  await page.goto(server.url + '/');
  if (role) {
    await page.waitForSelector('#login-token', { state: 'visible' });
    await page.fill('#login-token', TOKENS[role]);
    await page.click('#login-submit');
  }
  await page.waitForSelector('#app:not([hidden])');
  return { context, page, problems };
}

export async function waitFor(fn, { timeout = 20_000, interval = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await sleep(interval);
  }
}

// renderedCells is the number of cell polygons MapLibre drew in the viewport.
export function renderedCells(page) {
  return page.evaluate(() => {
    const c = window.citybrain;
    if (!c || !c.cityMap.loaded) return 0;
    const layers = ['cells-fill', 'cells-3d'].filter((l) => c.map.getLayoutProperty(l, 'visibility') !== 'none');
    return c.map.queryRenderedFeatures({ layers }).length;
  });
}

// makeIncident posts obviously incident-worthy evidence at the middle of the n-th primary road of the demo
// city (a camera sees a crash and a stalled vehicle, probes stand still) and returns the incident the engine
// makes of it, or null when none appears within 15 s.
export async function makeIncident(srv, n = 0) {
  const net = (await apiCall(srv, '/api/v1/network?zoom=12')).json;
  const prim = net.features.filter((f) => f.properties.class === 'primary');
  const link = prim[n % Math.max(1, prim.length)] || net.features[n];
  const [lng, lat] = link.geometry.coordinates[Math.floor(link.geometry.coordinates.length / 2)];
  const now = Date.now(), cam = `cam-${String(201 + n)}`;
  const ev = [
    { kind: 'video', ts: now - 20_000, id: cam, lat, lng, type: 'crash', confidence: 0.97, source: 'video-analytics' },
    { kind: 'video', ts: now - 15_000, id: cam, lat, lng, type: 'stalled_vehicle', confidence: 0.95, source: 'video-analytics' },
    { kind: 'video', ts: now - 10_000, id: cam, lat, lng, type: 'stalled_vehicle', confidence: 0.95, source: 'video-analytics' },
    // A caller at the scene: the camera's frames are one crash frame and one vehicle's first stall alarm (seen
    // twice), which the fusion holds as a candidate until something else about the road agrees (issue 12,
    // twelfth pass: a camera's stall alarms repeat only as one vehicle's, a minute apart).
    { kind: 'report', ts: now - 8_000, id: `call-${String(201 + n)}`, lat, lng, type: 'crash', severity: 3, source: 'hotline-122' },
  ];
  for (let i = 0; i < 12; i++) ev.push({ kind: 'probe', ts: now - 30_000 + i * 2500, id: `veh-${n}-${i % 4}`, lat: lat + (i % 3) * 1e-4, lng, speed_kmh: 0.5 });
  const posted = await apiCall(srv, '/api/v1/events', { token: TOKENS.feed, method: 'POST', contentType: 'application/x-ndjson',
    body: ev.map((e) => JSON.stringify(e)).join('\n') });
  if (posted.status !== 200) throw new Error(`POST /api/v1/events: ${posted.status} ${posted.text}`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const list = (await apiCall(srv, '/api/v1/incidents?status=active', { token: TOKENS.viewer })).json || [];
    const inc = list.find((i) => Math.abs(i.lat - lat) < 0.003 && Math.abs(i.lng - lng) < 0.003);
    if (inc) return inc;
    await sleep(1000);
  }
  return null;
}

export const connState = (page) => page.getAttribute('#conn', 'data-state');
