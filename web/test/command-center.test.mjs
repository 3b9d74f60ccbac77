// Browser tests of the command center against the real binary with the demo city (issue 6):
// the page loads without console errors and without outside requests, cells and roads render, login and
// roles work, an incident posted through the API reaches the queue (and a commander can confirm it, a viewer
// cannot), and the view recovers after the server restarts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TOKENS, apiCall, connState, launchBrowser, makeIncident, openApp, renderedCells, sleep, startServer, waitFor } from './harness.mjs';

let server, browser;


before(async () => {
  browser = await launchBrowser();
  server = await startServer({ demo: true });
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('command center', { timeout: 600_000 }, () => {
  let viewer; // one signed-in viewer page reused by several tests (keeps the run lean on 2 cores)

  test('login screen rejects a wrong token, then a viewer signs in', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(90_000); // as openApp: actions on a loaded machine
    const page = await context.newPage();
    await page.goto(server.url + '/');
    await page.waitForSelector('#login-token', { state: 'visible' });
    assert.equal(await page.isVisible('#login-guest'), false, 'no read-only entry when auth is configured');
    await page.fill('#login-token', 'not-a-token');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await page.textContent('#login-error'), /not recognised/);
    await context.close();
  });

  test('the page loads with no console errors or outside requests, and cells and roads render', async () => {
    viewer = await openApp(browser, server, 'viewer');
    const { page, problems } = viewer;
    await waitFor(async () => (await connState(page)) === 'live', { what: 'connection live' });
    const n = await waitFor(() => renderedCells(page), { timeout: 30_000, what: 'cells drawn on the map' });
    assert.ok(n > 10, `only ${n} cells drawn`);
    const roads = await waitFor(() => page.evaluate(() => window.citybrain.map.queryRenderedFeatures({ layers: ['roads'] }).length),
      { what: 'roads drawn' });
    assert.ok(roads > 10, `only ${roads} road links drawn`);
    assert.equal(await page.textContent('#user-role'), 'viewer');
    // KPIs come from the live city.
    await waitFor(async () => /\d/.test(await page.textContent('#kpi-speed b')), { what: 'mean speed KPI' });
    assert.deepEqual(problems.page, [], 'page errors');
    assert.deepEqual(problems.console, [], 'console errors');
    assert.deepEqual(problems.external, [], 'requests to other hosts');
  });

  test('layers switch from the panel and the keyboard; a clicked cell opens its detail with a chart', async () => {
    const { page } = viewer;
    await page.keyboard.press('1'); // cells off
    await waitFor(async () => (await renderedCells(page)) === 0, { what: 'cells hidden' });
    await page.click('input[data-layer="cells"]'); // back on
    await waitFor(() => renderedCells(page), { what: 'cells shown again' });
    // Click the centre of a drawn cell.
    const pt = await page.evaluate(() => {
      const m = window.citybrain.map;
      const r = m.getCanvas().getBoundingClientRect();
      for (const f of m.queryRenderedFeatures({ layers: ['cells-fill'] })) {
        const c = window.citybrain.state.cells.get(f.properties.cell);
        const p = m.project([c.lng, c.lat]);
        const x = r.left + p.x, y = r.top + p.y;
        if (document.elementFromPoint(x, y) === m.getCanvas()) return { x, y, cell: c.cell };
      }
      return null;
    });
    assert.ok(pt, 'a cell not under a panel');
    await page.evaluate(() => {
      for (const l of ['roads', 'incidents', 'units', 'nodes']) window.citybrain.cityMap.setLayer(l, false);
      window.citybrain.map.setLayoutProperty('roads', 'visibility', 'none'); // the base map: click the cell, not a road
    });
    await page.mouse.click(pt.x, pt.y);
    await page.waitForSelector('#detail:not([hidden])');
    assert.match(await page.textContent('#detail h2'), /^Cell /);
    // How much evidence the speed rests on is shown beside it (the published confidence, in per cent).
    const conf = await page.$$eval('#detail .metrics > div', (ds) => ds.map((d) => [d.querySelector('label')?.textContent, d.querySelector('b')?.textContent]));
    const shown = conf.find(([l]) => l === 'Confidence');
    assert.ok(shown, `a Confidence metric among ${JSON.stringify(conf)}`);
    assert.match(shown[1], /^(\d+ %( \(low: few probes\))?|—)$/);
    await waitFor(() => page.$('#detail svg'), { timeout: 30_000, what: 'speed chart' });
    await page.keyboard.press('Escape');
    assert.equal(await page.isVisible('#detail'), false);
    await page.evaluate(() => {
      for (const l of ['roads', 'incidents', 'units', 'nodes']) window.citybrain.cityMap.setLayer(l, true);
      window.citybrain.map.setLayoutProperty('roads', 'visibility', 'visible');
    });
  });

  test('an incident posted through the API appears in the queue; a commander confirms it, a viewer cannot', async (t) => {
    // An obviously incident-worthy input at a road of the demo city: a camera sees a crash and a stalled
    // vehicle (its stall alarm once a minute while it stands: a camera's stall alarms repeat only as one
    // vehicle's), and probes stand still. One source, so it stays suspected until an operator acts.
    const net = (await apiCall(server, '/api/v1/network?zoom=12')).json;
    const link = net.features.find((f) => f.properties.class === 'primary') || net.features[0];
    const [lng, lat] = link.geometry.coordinates[Math.floor(link.geometry.coordinates.length / 2)];
    const now = Date.now();
    const ev = [
      { kind: 'video', ts: now - 20_000, id: 'cam-webtest-1', lat, lng, type: 'crash', confidence: 0.97, source: 'video-analytics' },
      { kind: 'video', ts: now - 125_000, id: 'cam-webtest-1', lat, lng, type: 'stalled_vehicle', confidence: 0.95, source: 'video-analytics' },
      { kind: 'video', ts: now - 65_000, id: 'cam-webtest-1', lat, lng, type: 'stalled_vehicle', confidence: 0.95, source: 'video-analytics' },
      { kind: 'video', ts: now - 5_000, id: 'cam-webtest-1', lat, lng, type: 'stalled_vehicle', confidence: 0.95, source: 'video-analytics' },
    ];
    for (let i = 0; i < 12; i++) ev.push({ kind: 'probe', ts: now - 30_000 + i * 2500, id: `veh-webtest-${i % 4}`, lat: lat + (i % 3) * 1e-4, lng, speed_kmh: 0.5 });
    const posted = await apiCall(server, '/api/v1/events', { token: TOKENS.feed, method: 'POST', contentType: 'application/x-ndjson',
      body: ev.map((e) => JSON.stringify(e)).join('\n') });
    assert.equal(posted.status, 200, posted.text);
    let inc = null;
    const deadline = Date.now() + 15_000;
    while (!inc && Date.now() < deadline) {
      const list = (await apiCall(server, '/api/v1/incidents?status=active', { token: TOKENS.viewer })).json || [];
      inc = list.find((i) => Math.abs(i.lat - lat) < 0.005 && Math.abs(i.lng - lng) < 0.005) || null;
      if (!inc) await sleep(1000);
    }
    if (!inc) {
      t.skip('incidents feature not built yet: GET /api/v1/incidents stayed empty 15 s after a camera crash + a stalled vehicle alarmed three times + standing probes');
      return;
    }
    // Viewer: it appears in the queue within seconds, without actions.
    const { page } = viewer;
    const sel = `#queue-list .inc[data-id="${inc.id}"]`;
    await page.waitForSelector(sel, { timeout: 30_000 });
    await page.click(sel);
    assert.equal(await page.isDisabled(`${sel} button.confirm`), true, 'viewer sees confirm disabled');
    await page.keyboard.press('c');
    await page.waitForSelector('.toast.err');
    const denied = await apiCall(server, `/api/v1/incidents/${encodeURIComponent(inc.id)}`, { token: TOKENS.viewer, method: 'POST', body: { status: 'confirmed' } });
    assert.equal(denied.status, 403, 'the server refuses a viewer: ' + denied.text);
    // Commander: confirm it (or, when the engine already confirmed it from corroborating evidence, dismiss it).
    const action = inc.status === 'confirmed' ? 'dismissed' : 'confirmed';
    const cmd = await openApp(browser, server, 'commander');
    try {
      await cmd.page.waitForSelector(sel, { timeout: 30_000 });
      await cmd.page.click(sel);
      await cmd.page.click(`${sel} button[data-act="${action}"]`);
      await waitFor(async () => {
        const list = (await apiCall(server, '/api/v1/incidents?status=all', { token: TOKENS.viewer })).json || [];
        return list.find((i) => i.id === inc.id)?.status === action;
      }, { timeout: 30_000, what: `incident ${action} on the server` });
      await cmd.page.selectOption('#queue-filter', 'all');
      await cmd.page.waitForSelector(`${sel}[data-status="${action}"]`, { timeout: 30_000 });
      assert.deepEqual(cmd.problems.page, []);
    } finally {
      await cmd.context.close();
    }
  });

  test('a commander dispatches a unit from the incident panel and sees its route and green wave; a viewer cannot', async (t) => {
    const inc = await makeIncident(server, 3);
    if (!inc) { t.skip('no incident: GET /api/v1/incidents stayed empty 15 s after a camera crash + stalled vehicle + standing probes + a call'); return; }
    let opts = [];
    const deadline = Date.now() + 20_000;
    while (!opts.length && Date.now() < deadline) {
      const r = await apiCall(server, `/api/v1/incidents/${encodeURIComponent(inc.id)}/units?k=3`, { token: TOKENS.viewer });
      assert.notEqual(r.status, 404, 'GET /api/v1/incidents/{id}/units missing: ' + r.text);
      opts = r.status === 200 ? r.json : [];
      if (!opts.length) await sleep(1000);
    }
    if (!opts.length) { t.skip(`no available unit can reach incident ${inc.id} within 20 s (GET …/units?k=3 stayed empty): nothing to dispatch`); return; }
    const sel = `#queue-list .inc[data-id="${inc.id}"]`;
    // Viewer: sees the nearest units, but both dispatch buttons are disabled; the server refuses anyway.
    const { page } = viewer;
    await page.waitForSelector(sel, { timeout: 30_000 });
    await page.click(sel);
    await page.waitForSelector('#dispatch .opt', { timeout: 30_000 });
    assert.equal(await page.isDisabled(`${sel} button.dispatch`), true, 'viewer: queue dispatch disabled');
    assert.equal(await page.isDisabled('#dispatch-send'), true, 'viewer: panel dispatch disabled');
    const denied = await apiCall(server, '/api/v1/dispatch', { token: TOKENS.viewer, method: 'POST', body: { incident_id: inc.id, unit_id: opts[0].unit_id } });
    assert.equal(denied.status, 403, 'the server refuses a viewer: ' + denied.text);
    await page.keyboard.press('Escape');
    // Commander: the three best units with ETAs; send the chosen one.
    const cmd = await openApp(browser, server, 'commander');
    try {
      const p = cmd.page;
      await p.waitForSelector(sel, { timeout: 30_000 });
      await p.click(sel);
      await p.waitForSelector('#dispatch .opt', { timeout: 30_000 });
      const shown = await p.$$eval('#dispatch .opt', (els) => els.map((e) => ({ unit: e.dataset.unit, eta: e.querySelector('.eta-v').textContent })));
      assert.ok(shown.length >= 1 && shown.length <= 3, `1–3 units shown, got ${shown.length}`);
      for (const o of shown) assert.match(o.eta, /\d+ (s|min)/, `ETA shown for ${o.unit}`);
      const pick = shown[shown.length > 1 ? 1 : 0].unit; // the choice is the operator's, not always the best
      await p.click(`#dispatch .opt[data-unit="${pick}"]`);
      await p.waitForSelector(`#dispatch .opt.sel[data-unit="${pick}"]`);
      await p.click('#dispatch-send');
      const d = await waitFor(async () => {
        const list = (await apiCall(server, '/api/v1/dispatches', { token: TOKENS.viewer })).json || [];
        return list.find((x) => x.incident_id === inc.id);
      }, { timeout: 30_000, what: 'dispatch on the server' });
      assert.equal(d.unit_id, pick, 'the chosen unit was sent');
      await p.waitForSelector('#dispatch .dp-track', { timeout: 30_000 });
      assert.match(await p.textContent('#dispatch-eta'), /\d+ (s|min)|arrived/);
      await p.evaluate(([lng, lat]) => window.citybrain.cityMap.flyTo(lng, lat, 14), [inc.lng, inc.lat]);
      const drawn = await waitFor(() => p.evaluate(() => window.citybrain.map.queryRenderedFeatures({ layers: ['route'] }).length), { timeout: 30_000, what: 'route drawn' });
      assert.ok(drawn > 0);
      const full = (await apiCall(server, `/api/v1/dispatches/${d.id}`, { token: TOKENS.viewer })).json;
      if (full.green_wave?.length) {
        await waitFor(async () => (await p.$$('.wave-label')).length === full.green_wave.length, { what: 'green-wave labels' });
        assert.match(await p.textContent('#dispatch .dp-wave'), /green \d\d:\d\d|passed/);
      }
      // ETA and progress follow the dispatch (polled every 2 s).
      const polls = await waitFor(async () => {
        const n = await p.evaluate(() => window.citybrain.dispatcher.track?.updated_at);
        return n && n !== full.created_at ? n : null;
      }, { timeout: 30_000, what: 'dispatch polled' });
      assert.ok(polls);
      assert.deepEqual(cmd.problems.page, [], 'page errors');
      assert.deepEqual(cmd.problems.console, [], 'console errors');
    } finally {
      await cmd.context.close();
    }
  });

  test('a police officer sees the recommended plan of an intersection and accepts it', async () => {
    // A signalised intersection of the demo city with approaches, from the network's link ends.
    const net = (await apiCall(server, '/api/v1/network?zoom=14')).json;
    const ids = [...new Set(net.features.flatMap((f) => [f.properties.to, f.properties.from]))];
    let node = null;
    for (const id of ids) {
      const r = await apiCall(server, `/api/v1/intersections/${encodeURIComponent(id)}`, { token: TOKENS.viewer });
      if (r.status === 200 && r.json.signalised && r.json.approaches.length >= 3) { node = r.json; break; }
    }
    assert.ok(node, 'a signalised intersection in the demo city');
    const pol = await openApp(browser, server, 'police');
    try {
      const p = pol.page;
      await waitFor(() => p.evaluate(() => window.citybrain.cityMap.loaded), { what: 'map loaded' });
      await p.evaluate(([lng, lat]) => {
        const c = window.citybrain.cityMap;
        for (const l of ['incidents', 'units', 'transit', 'sensors']) c.setLayer(l, false);
        c.map.jumpTo({ center: [lng, lat], zoom: 16 });
      }, [node.lng, node.lat]);
      const pt = await waitFor(() => p.evaluate((id) => {
        const m = window.citybrain.map;
        const f = m.queryRenderedFeatures({ layers: ['nodes'] }).find((x) => x.properties.id === id);
        if (!f) return null;
        const r = m.getCanvas().getBoundingClientRect(), q = m.project(f.geometry.coordinates);
        return { x: r.left + q.x, y: r.top + q.y };
      }, node.id), { timeout: 30_000, what: `intersection ${node.id} drawn` });
      await p.mouse.click(pt.x, pt.y);
      await p.waitForSelector('#detail:not([hidden]) #plan', { timeout: 30_000 });
      assert.match(await p.textContent('#detail h2'), new RegExp(node.id));
      assert.equal(await p.$$eval('#detail table.appr tbody tr', (r) => r.length), node.approaches.length, 'one row per approach');
      // Each approach's speed carries its confidence; a speed resting on under one vehicle-minute is marked.
      let speeds = 0;
      for (const [text, title, low] of await p.$$eval('#detail table.appr td.spd', (tds) => tds.map((d) => [d.textContent, d.title, d.classList.contains('lowconf')]))) {
        if (text === '—') continue;
        speeds++;
        const m = title.match(/^Confidence (\d+) %/);
        assert.ok(m, `the speed ${text} has its confidence: ${JSON.stringify(title)}`);
        assert.equal(low, Number(m[1]) < 50, `${text} at ${m[1]} % marked low iff under 50 %`);
        assert.equal(text.endsWith('?'), low, `${text}: a low-confidence speed ends with ?`);
      }
      assert.ok(speeds > 0, 'an approach with a live speed');
      assert.match(await p.textContent('#plan'), /Cycle\s*\d+ s/);
      assert.equal(await p.isDisabled('#plan-accept'), false, 'police may accept');
      await p.fill('#plan-note', 'web test');
      await p.click('#plan-accept');
      const dec = await waitFor(async () => {
        const list = (await apiCall(server, `/api/v1/intersections/${encodeURIComponent(node.id)}/plans`, { token: TOKENS.viewer })).json || [];
        return list.find((x) => x.accepted && x.by === 'test-police');
      }, { timeout: 30_000, what: 'accepted plan on the server' });
      assert.equal(dec.note, 'web test');
      await p.waitForSelector('#detail ul.decisions li.acc', { timeout: 30_000 });
      assert.deepEqual(pol.problems.page, [], 'page errors');
      assert.deepEqual(pol.problems.console, [], 'console errors');
    } finally {
      await pol.context.close();
    }
    // A viewer sees the plan with the decision buttons disabled; the server refuses it.
    const denied = await apiCall(server, `/api/v1/intersections/${encodeURIComponent(node.id)}/plan`, { token: TOKENS.viewer, method: 'POST', body: { decision: 'accept', method: 'webster' } });
    assert.equal(denied.status, 403, denied.text);
  });

  test('after the server restarts, the page reconnects and recovers the view', async () => {
    const { page, problems } = viewer;
    const port = server.port, dir = server.dir;
    await server.stop();
    await waitFor(async () => ['reconnecting', 'offline'].includes(await connState(page)), { what: 'indicator shows the loss' });
    assert.equal(await page.isVisible('#banner'), true, 'banner tells the connection is lost');
    server = await startServer({ demo: true, port, dir });
    await waitFor(async () => (await connState(page)) === 'live', { timeout: 30_000, what: 'reconnected' });
    const before = await page.evaluate(() => window.citybrain.live.seq);
    await waitFor(async () => (await page.evaluate(() => window.citybrain.live.seq)) !== before || (await renderedCells(page)) > 10,
      { timeout: 30_000, what: 'live data after the restart' });
    const n = await waitFor(() => renderedCells(page), { timeout: 30_000, what: 'cells after the restart' });
    assert.ok(n > 10);
    assert.equal(await page.isVisible('#banner'), false);
    assert.deepEqual(problems.page, [], 'page errors');
    await viewer.context.close();
  });
});
