// Browser tests of the command center as operators have it (issue 18), against the real binary with the demo
// city: the base map with labels (West Lake, road and place names), Chinese and English chosen per user and
// kept after a reload, times in the city's time zone, the 24-hour TPI chart drawn from GET /api/v1/history,
// and the replay time bar driven end to end (create, play, pause, speed, seek, back to live) with a backward
// seek removing an incident that had not happened yet. A second server shows an offline PMTiles base map and an
// OSM extract's roads (Monaco).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TOKENS, apiCall, launchBrowser, makeIncident, openApp, renderedCells, sleep, startServer, tempDir, waitFor } from './harness.mjs';
import { png, rasterPMTiles } from './pmtiles.mjs';

let server, browser, serverStarted;
before(async () => {
  browser = await launchBrowser();
  server = await startServer({ demo: true });
  serverStarted = Date.now();
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await server?.stop();
});

const rendered = (page, layers) => page.evaluate((ls) => {
  const m = window.citybrain.map;
  return m.queryRenderedFeatures({ layers: ls.filter((l) => m.getLayer(l)) }).map((f) => ({ layer: f.layer.id, props: f.properties }));
}, layers);

describe('operators', { timeout: 900_000 }, () => {
  test('the base map shows West Lake, parks and the roads\' and places\' names', async () => {
    const { context, page, problems } = await openApp(browser, server, 'viewer');
    try {
      await waitFor(() => page.evaluate(() => window.citybrain?.cityMap.loaded), { what: 'map loaded' });
      const info = (await apiCall(server, '/api/v1/basemap', { token: TOKENS.viewer })).json;
      assert.equal(info.tiles, null, 'no tile archive without --basemap');
      assert.equal(info.features.source, 'demo');
      assert.ok(info.features.counts.water >= 1 && info.features.counts.park >= 1, JSON.stringify(info.features.counts));
      await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.158, 30.252], zoom: 14 }));
      const base = await waitFor(async () => {
        const f = await rendered(page, ['base-water', 'base-park', 'base-water-labels', 'base-labels', 'road-labels']);
        const by = (l) => f.filter((x) => x.layer === l);
        return by('base-water').length && by('road-labels').length && by('base-labels').length ? f : null;
      }, { timeout: 30_000, what: 'water, road labels and place labels drawn' });
      const names = new Set(base.filter((f) => f.layer === 'road-labels').map((f) => f.props.name));
      assert.ok([...names].some((n) => /Rd|St/.test(n)), `road labels: ${[...names].join(', ')}`);
      const places = base.filter((f) => f.layer === 'base-labels').map((f) => f.props.name);
      assert.ok(places.length > 0, 'place names');
      // The lake is named where it is.
      await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.1445, 30.245], zoom: 13 }));
      await waitFor(async () => (await rendered(page, ['base-water-labels'])).some((f) => f.props.name === 'West Lake'), { what: 'West Lake label' });
      assert.deepEqual(problems.page, [], 'page errors');
      assert.deepEqual(problems.console, [], 'console errors');
      assert.deepEqual(problems.external, [], 'requests to other hosts');
    } finally { await context.close(); }
  });

  test('a user switches to Chinese: labels, map names and times follow, and the choice stays after a reload', async () => {
    const { context, page, problems } = await openApp(browser, server, 'commander');
    try {
      await waitFor(async () => /\d/.test(await page.textContent('#evtime')), { what: 'event time' });
      assert.equal(await page.textContent('#kpi-tpi label'), 'TPI');
      await page.selectOption('#lang', 'zh-CN');
      assert.equal(await page.textContent('#kpi-tpi label'), '拥堵指数');
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
      assert.equal(await page.textContent('#hist-open'), '历史');
      assert.match(await page.textContent('#layer-list'), /拥堵网格/);
      assert.match(await page.getAttribute('#kpi-speed', 'title'), /平均观测车速/);
      // Map labels: Chinese road names first.
      const field = await page.evaluate(() => JSON.stringify(window.citybrain.map.getLayoutProperty('road-labels', 'text-field')));
      assert.ok(field.indexOf('name_zh') < field.indexOf('"name"'), `road label field ${field}`);
      await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.17, 30.262], zoom: 14.5 }));
      await waitFor(async () => (await rendered(page, ['road-labels'])).some((f) => /路|街/.test(f.props.name_zh || '')), { what: 'Chinese road names drawn' });
      // Keyboard help in Chinese.
      await page.keyboard.press('?');
      assert.match(await page.textContent('#help'), /键盘快捷键/);
      await page.keyboard.press('Escape');
      // Times are the city's (Asia/Shanghai), whatever the browser's zone.
      const st = (await apiCall(server, '/api/v1/status', { token: TOKENS.viewer })).json;
      assert.equal(st.timezone, 'Asia/Shanghai');
      const shown = await page.textContent('#evtime');
      const [h, m] = shown.split(':').map(Number);
      const city = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(st.now)).split(':').map(Number);
      const diff = Math.abs((h * 60 + m) - (city[0] * 60 + city[1]));
      assert.ok(diff <= 1 || diff >= 1439, `clock ${shown} is not city time ${city.join(':')}`);
      // Reload: still Chinese for this user.
      await page.reload();
      await page.waitForSelector('#app:not([hidden])');
      assert.equal(await page.textContent('#kpi-tpi label'), '拥堵指数');
      assert.equal(await page.inputValue('#lang'), 'zh-CN');
      // Per user: a viewer on this browser picks English; the commander gets Chinese back when signing in again.
      const signIn = async (role) => {
        await page.click('#logout');
        await page.waitForSelector('#login-token', { state: 'visible' });
        await page.fill('#login-token', TOKENS[role]);
        await page.click('#login-submit');
        await page.waitForSelector('#app:not([hidden])');
      };
      await signIn('viewer');
      await page.selectOption('#lang', 'en');
      assert.equal(await page.textContent('#kpi-tpi label'), 'TPI');
      await signIn('commander');
      await waitFor(async () => (await page.textContent('#kpi-tpi label')) === '拥堵指数', { what: 'the commander\'s Chinese' });
      await signIn('viewer');
      await waitFor(async () => (await page.textContent('#kpi-tpi label')) === 'TPI', { what: 'the viewer\'s English' });
      assert.deepEqual(problems.page, [], 'page errors');
      assert.deepEqual(problems.console, [], 'console errors');
    } finally { await context.close(); }
  });

  test('signing out sends nothing without a token while the page reloads', async () => {
    const { context, page, problems } = await openApp(browser, server, 'commander');
    try {
      await waitFor(async () => /\d/.test(await page.textContent('#evtime')), { what: 'event time' });
      const refused = [];
      page.on('response', (r) => { if (r.status() === 401) refused.push(r.url()); });
      // Hold the reload's page for 7 s, so every poll of the old page (3-5 s timers) falls due meanwhile: before
      // the fix they went out without the token just cleared, and the server answered each with a 401.
      await page.route((u) => u.pathname === '/', async (route) => { await sleep(7000); await route.continue(); });
      await page.click('#logout');
      await page.waitForSelector('#login-token', { state: 'visible' });
      assert.deepEqual(refused, [], 'requests refused for want of a token');
      assert.deepEqual(problems.page, [], 'page errors');
      assert.deepEqual(problems.console, [], 'console errors');
    } finally { await context.close(); }
  });

  test('the history panel draws the 24-hour TPI chart from the server, for the city, a district and a drawn area', async () => {
    const { context, page, problems } = await openApp(browser, server, 'viewer');
    try {
      await waitFor(() => renderedCells(page), { timeout: 30_000, what: 'cells' });
      // The demo city has run for a couple of minutes: the server holds complete minutes of TPI.
      const hist = await waitFor(async () => {
        const h = (await apiCall(server, '/api/v1/history?metric=tpi', { token: TOKENS.viewer })).json;
        return h.series[0].points.some((p) => p[1] != null) ? h : null;
      }, { timeout: 150_000, interval: 5000, what: 'a minute of TPI history on the server' });
      assert.equal(hist.step_s, 300, '24 h in 5-minute steps');
      assert.equal(hist.series[0].points.length, 288);
      await page.keyboard.press('h');
      await page.waitForSelector('#history:not([hidden]) svg.hist-chart');
      const n = await waitFor(async () => Number(await page.getAttribute('#history svg.hist-chart', 'data-points')), { what: 'points drawn' });
      const want = (await apiCall(server, '/api/v1/history?metric=tpi', { token: TOKENS.viewer })).json.series[0].points.filter((p) => p[1] != null).length;
      assert.ok(Math.abs(n - want) <= 1, `chart has ${n} points, server ${want}`);
      assert.ok(await page.$eval('#history svg.hist-chart path[d^="M"]', (e) => e.getAttribute('d').length > 5), 'a line is drawn');
      // A district: its own series.
      await page.waitForSelector('#history .hist-districts li', { timeout: 20_000 });
      await waitFor(() => page.evaluate(() => !window.citybrain.historyPanel.loading), { what: 'history loaded' });
      await page.click('#history .hist-districts li');
      await waitFor(async () => /District|片区/.test(await page.textContent('#history .hist-sub')), { what: 'district chart' });
      // A drawn area around the middle of the map.
      await page.click('#hist-draw');
      // A rectangle on the map where no panel covers it (corners and middle are the map's canvas).
      const box = await page.evaluate(() => {
        const cv = window.citybrain.map.getCanvas(), r = cv.getBoundingClientRect();
        for (const fx of [0.3, 0.2, 0.1, 0.4]) for (const fy of [0.08, 0.2, 0.35]) {
          const b = { x: r.left + r.width * fx, y: r.top + r.height * fy, w: r.width * 0.15, h: r.height * 0.2 };
          const pts = [[b.x, b.y], [b.x + b.w, b.y + b.h], [b.x + b.w / 2, b.y + b.h / 2], [b.x + b.w, b.y], [b.x, b.y + b.h]];
          if (pts.every(([x, y]) => document.elementFromPoint(x, y) === cv)) return b;
        }
        return null;
      });
      assert.ok(box, 'a free rectangle on the map');
      await page.mouse.move(box.x, box.y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2, { steps: 4 });
      await page.mouse.move(box.x + box.w, box.y + box.h, { steps: 4 });
      await page.mouse.up();
      await waitFor(async () => /Drawn area/.test(await page.textContent('#history .hist-sub')), { what: 'drawn area chart' });
      const area = await page.evaluate(() => window.citybrain.historyPanel.area);
      assert.equal(area.kind, 'drawn');
      assert.ok(area.bbox[2] > area.bbox[0] && area.bbox[3] > area.bbox[1]);
      await waitFor(async () => await page.getAttribute('#history svg.hist-chart', 'data-points') !== null, { what: 'drawn area chart drawn' });
      // The KPI sparklines come from the same history.
      await waitFor(async () => Number(await page.getAttribute('#kpi-tpi svg.spark', 'data-points')) > 0, { timeout: 70_000, what: 'TPI sparkline' });
      assert.deepEqual(problems.page, [], 'page errors');
      assert.deepEqual(problems.console, [], 'console errors');
    } finally { await context.close(); }
  });

  test('a planner drives the replay time bar; a backward seek removes an incident that had not happened yet', async (t) => {
    // The backward seek needs log from before the incident: a minute and a half of the demo city (the
    // earlier tests take longer than that; run alone, this test waits for it).
    await sleep(Math.max(0, serverStarted + 90_000 - Date.now()));
    const inc = await makeIncident(server, 5);
    if (!inc) { t.skip('no incident: GET /api/v1/incidents stayed empty 15 s after a camera crash + stalled vehicle + standing probes + a call'); return; }
    const detected = Date.parse(inc.detected_at);
    const pl = await openApp(browser, server, 'planner');
    const p = pl.page;
    try {
      await waitFor(() => renderedCells(p), { timeout: 30_000, what: 'cells' });
      // Create: the last few minutes, including the incident, at 1×, so that the range is not played through
      // before the bar is driven (a loaded machine polls slowly).
      await p.click('#replay-open');
      await p.waitForSelector('#replay-form:not([hidden])');
      const st = (await apiCall(server, '/api/v1/status', { token: TOKENS.viewer })).json;
      const to = Date.parse(st.now), from = detected - 150_000;
      await p.evaluate(([f, tt]) => {
        const off = (ms) => { const d = new Date(ms); return new Date(ms + (new Date(d.toLocaleString('en-US', { timeZone: 'Asia/Shanghai' })) - new Date(d.toLocaleString('en-US', { timeZone: 'UTC' })))).toISOString().slice(0, 19); };
        document.getElementById('replay-from').value = off(f);
        document.getElementById('replay-to').value = off(tt);
      }, [from, to]);
      await p.selectOption('#replay-speed', '1');
      await p.click('#replay-start');
      await p.waitForSelector('#timebar:not([hidden])', { timeout: 15_000 });
      const id = await p.evaluate(() => window.citybrain.replay.id);
      assert.ok(id, 'a session');
      const info = async () => (await apiCall(server, `/api/v1/replays/${id}`, { token: TOKENS.planner })).json;
      const i0 = await info();
      assert.ok(Math.abs(Date.parse(i0.from) - Math.floor(from / 1000) * 1000) < 1000, `from ${i0.from}: the form's times are city time`);
      assert.equal(i0.speed, 1);
      assert.equal(await p.getAttribute('#conn', 'data-state'), 'live');
      assert.equal((await p.textContent('#conn span')).trim(), 'Replay');
      // Pause and play.
      await waitFor(async () => (await info()).state === 'playing', { what: 'playing' });
      await p.click('#tb-play');
      await waitFor(async () => (await info()).state === 'paused', { what: 'paused' });
      await waitFor(async () => (await p.textContent('#tb-state')) === 'paused', { what: 'bar says paused' });
      await p.click('#tb-play');
      await waitFor(async () => (await info()).state === 'playing', { what: 'playing again' });
      // Speed.
      await p.selectOption('#tb-speed', '60');
      await waitFor(async () => (await info()).speed === 60, { what: 'speed 60' });
      // Seek to the end: the incident has happened; the queue shows it.
      await p.evaluate(() => { const s = document.getElementById('tb-seek'); s.value = '1000'; s.dispatchEvent(new Event('change')); });
      await waitFor(async () => Date.parse((await info()).position) >= to - 15_000, { what: 'position at the end' });
      const inQueue = () => p.evaluate((iid) => [...window.citybrain.queue.items.values()].some((x) => Math.abs(x.lat - iid.lat) < 0.003 && Math.abs(x.lng - iid.lng) < 0.003),
        { lat: inc.lat, lng: inc.lng });
      const seen = await waitFor(inQueue, { timeout: 20_000, what: 'the incident in the replayed queue' }).catch(() => false);
      // Seek back before it was detected: it must be gone. Paused first, so that the position stays before the
      // incident while it is checked (at 60× a playing session passes the 90 s margin in 1.5 s).
      if ((await info()).state === 'playing') {
        await p.click('#tb-play');
        await waitFor(async () => (await info()).state !== 'playing', { what: 'paused before the backward seek' });
      }
      await p.evaluate(() => { const s = document.getElementById('tb-seek'); s.value = '0'; s.dispatchEvent(new Event('change')); });
      await waitFor(async () => Date.parse((await info()).position) < detected - 60_000, { what: 'position before the incident' });
      await waitFor(async () => !(await inQueue()), { timeout: 10_000, what: 'the incident removed by the backward seek' });
      if (!seen) t.diagnostic('the replayed engine did not re-detect the incident at the end of the range: only its removal was checked');
      // Back to live: the session is closed and the live city shows again.
      await p.click('#tb-live');
      await p.waitForSelector('#timebar', { state: 'hidden' });
      await waitFor(async () => (await apiCall(server, `/api/v1/replays/${id}`, { token: TOKENS.planner })).status === 404, { what: 'session closed' });
      await waitFor(async () => (await p.textContent('#conn span')).trim() === 'Live', { what: 'live again' });
      await waitFor(() => renderedCells(p), { timeout: 30_000, what: 'live cells' });
      assert.deepEqual(pl.problems.page, [], 'page errors');
      assert.deepEqual(pl.problems.console, [], 'console errors');
    } finally { await pl.context.close(); }
  });
});

describe('offline base maps', { timeout: 300_000 }, () => {
  test('a PMTiles file given with --basemap is served by the binary and drawn; an OSM extract draws its roads', async (t) => {
    const osm = path.join(process.env.CITYBRAIN_DATA || path.resolve('../../shared/data'), 'sumo/monaco/network.osm');
    const dir = tempDir('citybrain-basemap-');
    const pm = path.join(dir, 'world.pmtiles');
    fs.writeFileSync(pm, rasterPMTiles(png([30, 60, 90])));
    const extra = ['--basemap', pm];
    const haveOSM = fs.existsSync(osm);
    if (haveOSM) extra.push('--osm', osm);
    else t.diagnostic(`${osm} missing: the OSM part is skipped`);
    const srv = await startServer({ demo: false, dir, extra });
    try {
      const info = (await apiCall(srv, '/api/v1/basemap', { token: TOKENS.viewer })).json;
      assert.equal(info.tiles.kind, 'pmtiles');
      assert.equal(info.tiles.type, 'raster');
      const head = await fetch(srv.url + '/basemap/tiles.pmtiles', { headers: { Range: 'bytes=0-126', Authorization: `Bearer ${TOKENS.viewer}` } });
      assert.equal(head.status, 206);
      assert.equal(Buffer.from(await head.arrayBuffer()).subarray(0, 7).toString(), 'PMTiles');
      const { context, page, problems } = await openApp(browser, srv, 'viewer');
      try {
        const ranges = [];
        page.on('response', (r) => { if (r.url().includes('/basemap/tiles.pmtiles')) ranges.push(r.status()); });
        if (haveOSM) {
          assert.ok(info.features.counts.road > 500, `OSM roads: ${JSON.stringify(info.features.counts)}`);
          await page.evaluate(() => window.citybrain.map.jumpTo({ center: [7.42, 43.737], zoom: 14 }));
          await waitFor(async () => (await rendered(page, ['base-roads'])).length > 20, { timeout: 30_000, what: 'Monaco roads from the OSM extract' });
        }
        await waitFor(() => page.evaluate(() => !!window.citybrain.map.getLayer('basemap-raster') && window.citybrain.map.isSourceLoaded('basemap')), { timeout: 30_000, what: 'the PMTiles source loaded' });
        await waitFor(() => ranges.length > 0 && ranges.every((s) => s === 206 || s === 200), { what: 'range requests to the archive' });
        assert.deepEqual(problems.page, [], 'page errors');
        // Without a road network the server answers dispatch 503 (the app then hides it; the browser logs it).
        assert.deepEqual(problems.console.filter((m) => !/status of 503/.test(m)), [], 'console errors');
        assert.deepEqual(problems.external, [], 'requests to other hosts');
      } finally { await context.close(); }
    } finally { await srv.stop(); }
  });
});

void sleep;
