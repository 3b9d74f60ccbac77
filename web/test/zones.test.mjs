// Zones in the command center (issue 17): a commander draws a zone on the map (clicking its corners), saves it
// as an underpass, and a scripted incident and a water-level reading inside it raise alerts that appear in the
// panel and at /api/v1/alerts. The real binary, Debian's chromium.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TOKENS, apiCall, launchBrowser, openApp, startServer, waitFor } from './harness.mjs';

let server, browser;
before(async () => {
  server = await startServer({ demo: false });
  browser = await launchBrowser();
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await server?.stop();
});

const C = { lat: 30.2506, lng: 120.1702 }; // the zone's centre

test('a commander draws a zone; an incident and a sensor inside it raise alerts in the app and the API', { timeout: 180_000 }, async () => {
  const { context, page, problems } = await openApp(browser, server, 'commander');
  try {
    await waitFor(() => page.evaluate(() => window.citybrain?.cityMap.loaded), { what: 'map loaded' });
    await page.evaluate(({ lat, lng }) => window.citybrain.map.jumpTo({ center: [lng, lat], zoom: 15 }), C);
    await page.click('#zones-open');
    await page.waitForSelector('#zones:not([hidden]) #zone-draw:not([disabled])');
    await page.click('#zone-draw');
    // Click four corners about 250 m around the centre.
    const box = await page.locator('#map canvas').first().boundingBox();
    const d = 0.0025;
    for (const [dx, dy] of [[-1, -1], [1, -1], [1, 1], [-1, 1]]) {
      const p = await page.evaluate(({ lng, lat }) => window.citybrain.map.project([lng, lat]), { lng: C.lng + dx * d, lat: C.lat + dy * d });
      await page.mouse.click(box.x + p.x, box.y + p.y);
      await page.waitForTimeout(150); // two clicks in quick succession would be a double click
    }
    await page.click('#zone-finish');
    await page.waitForSelector('#zone-form');
    await page.fill('#zone-name', 'Yan\'an Rd underpass');
    await page.selectOption('#zone-kind', 'underpass');
    await page.click('#zone-save');
    await page.waitForSelector('#zone-list li[data-id]');
    const zones = (await apiCall(server, '/api/v1/zones')).json;
    assert.equal(zones.length, 1);
    const z = zones[0];
    assert.equal(z.kind, 'underpass');
    assert.equal(z.created_by, 'test-commander');
    assert.ok(z.polygon.length >= 4, 'four corners');
    assert.ok(z.rules.some((r) => r.type === 'incident'), 'incident rule checked by default');

    // Scripted evidence inside the zone: a caller and a camera report a crash, a water level over its threshold.
    const now = Date.now();
    const ev = [
      { kind: 'report', ts: now - 20_000, id: 'call-1', lat: C.lat, lng: C.lng, type: 'crash', severity: 3 },
      { kind: 'video', ts: now - 19_000, id: 'cam-1', lat: C.lat + 2e-4, lng: C.lng, type: 'crash', confidence: 0.95 },
      { kind: 'sensor', ts: now - 18_000, id: 'wl-1', lat: C.lat - 3e-4, lng: C.lng + 3e-4, type: 'water_level', value: 0.42, unit: 'm', threshold: 0.25 },
    ];
    const posted = await apiCall(server, '/api/v1/events', { token: TOKENS.feed, method: 'POST', contentType: 'application/x-ndjson',
      body: ev.map((e) => JSON.stringify(e)).join('\n') });
    assert.equal(posted.status, 200, posted.text);

    // The alerts appear in the panel (pushed on the websocket) …
    await page.waitForSelector(`#alert-list li[data-rule="incident"][data-zone="${z.id}"]`, { timeout: 30_000 });
    await page.waitForSelector(`#alert-list li[data-rule="hazard"][data-zone="${z.id}"]`, { timeout: 30_000 });
    // … and at /api/v1/alerts.
    const alerts = await waitFor(async () => {
      const l = (await apiCall(server, '/api/v1/alerts')).json;
      return l.some((a) => a.rule === 'incident') && l.some((a) => a.rule === 'hazard') ? l : null;
    }, { what: 'alerts in the API' });
    for (const a of alerts) {
      assert.equal(a.zone_id, z.id);
      assert.ok(a.evidence.length > 0, 'evidence');
    }
    // The zone is drawn on the map.
    const drawn = await waitFor(() => page.evaluate(() => {
      const m = window.citybrain.map;
      return m.getLayer('zones-fill') && m.querySourceFeatures('zones').length;
    }), { what: 'the zone drawn on the map' });
    assert.ok(drawn >= 1);
    assert.deepEqual(problems.page, [], 'page errors');
    assert.deepEqual(problems.external, [], 'requests to other hosts');
  } finally {
    await context.close();
  }
});
