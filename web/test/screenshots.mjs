// Saves screenshots of the main screens into the directory given (docs/screenshots): login, the live map on
// a laptop, a cell detail with its charts, the incident queue with a selected incident, the base map, the
// history panel, the main screen in Chinese, 3D cells, and the video-wall layout. Run by
// scripts/web-screenshots.sh.
import fs from 'node:fs';
import path from 'node:path';
import { TOKENS, apiCall, launchBrowser, makeIncident, openApp, renderedCells, sleep, startServer, waitFor } from './harness.mjs';

const out = path.resolve(process.argv[2] || '../docs/screenshots');
fs.mkdirSync(out, { recursive: true });
const server = await startServer({ demo: true });
const browser = await launchBrowser();
const shot = (page, name) => page.screenshot({ path: path.join(out, name), timeout: 120_000 }).then(() => console.log('wrote', path.join(out, name)));
try {
  // Login.
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const lp = await ctx.newPage();
  await lp.goto(server.url + '/');
  await lp.waitForSelector('#login-token', { state: 'visible' });
  await shot(lp, 'login.png');
  await ctx.close();

  // Laptop: commander, live city, let history and incidents build up (two incidents reported by cameras).
  const { page } = await openApp(browser, server, 'commander', { viewport: { width: 1440, height: 900 } });
  await waitFor(() => renderedCells(page), { timeout: 30_000, what: 'cells' });
  const inc = await makeIncident(server, 3);
  await makeIncident(server, 7);
  await page.evaluate(() => { for (const l of ['transit', 'sensors']) window.citybrain.cityMap.setLayer(l, true); });
  await sleep(35_000);
  await shot(page, 'main.png');

  // Dispatch: the nearest units of an incident, then the chosen one en route with its green wave.
  if (inc && await page.$(`#queue-list .inc[data-id="${inc.id}"]`)) {
    await page.click(`#queue-list .inc[data-id="${inc.id}"]`);
    await page.evaluate(([lng, lat]) => window.citybrain.cityMap.map.jumpTo({ center: [lng, lat], zoom: 14.6 }), [inc.lng, inc.lat]);
    if (await page.waitForSelector('#dispatch .opt', { timeout: 15_000 }).catch(() => null)) {
      await sleep(1500);
      await shot(page, 'dispatch-options.png');
      await page.click('#dispatch-send');
      await page.waitForSelector('#dispatch .dp-track', { timeout: 10_000 });
      await sleep(5000);
      await shot(page, 'dispatch.png');
    }
    await page.keyboard.press('Escape');
  }

  // Incident queue with the top incident selected (evidence and actions shown).
  if (await page.$('#queue-list .inc')) {
    await page.focus('#queue-list');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await sleep(2500);
    await shot(page, 'incident-queue.png');
    await page.keyboard.press('Escape');
  }

  // Cell detail with charts.
  const pt = await page.evaluate(() => {
    const m = window.citybrain.map, r = m.getCanvas().getBoundingClientRect();
    const fs = m.queryRenderedFeatures({ layers: ['cells-fill'] }).filter((f) => !f.properties.low);
    fs.sort((a, b) => ['smooth', 'basically_smooth', 'light', 'moderate', 'severe'].indexOf(b.properties.level) -
      ['smooth', 'basically_smooth', 'light', 'moderate', 'severe'].indexOf(a.properties.level));
    for (const f of fs) {
      const c = window.citybrain.state.cells.get(f.properties.cell), p = m.project([c.lng, c.lat]);
      if (document.elementFromPoint(r.left + p.x, r.top + p.y) === m.getCanvas()) return { x: r.left + p.x, y: r.top + p.y };
    }
    return null;
  });
  if (pt) {
    await page.evaluate(() => window.citybrain.map.setLayoutProperty('roads', 'visibility', 'none'));
    await page.mouse.click(pt.x, pt.y);
    await page.evaluate(() => window.citybrain.map.setLayoutProperty('roads', 'visibility', 'visible'));
    await sleep(1500);
    await shot(page, 'cell-detail.png');
    await page.keyboard.press('Escape');
  }

  // The base map around West Lake: the lake, its islands and causeways, streets and neighbourhoods by name.
  await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.158, 30.255], zoom: 14 }));
  await sleep(3000);
  await shot(page, 'basemap.png');

  // History: the TPI of the last hour (the server has only run a few minutes), with the districts.
  await page.keyboard.press('h');
  await page.waitForSelector('#history:not([hidden]) #hist-hours');
  await page.selectOption('#hist-hours', '1');
  await page.waitForSelector('#history svg.hist-chart', { timeout: 20_000 }).catch(() => null);
  await sleep(2500);
  await shot(page, 'history.png');

  // The same screen in Chinese (语言: 中文), the choice kept for this user.
  await page.selectOption('#lang', 'zh-CN');
  await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.17, 30.262], zoom: 14.2 }));
  await sleep(3500);
  await shot(page, 'main-zh.png');
  await page.keyboard.press('h');
  await page.selectOption('#lang', 'en');
  await page.evaluate(() => window.citybrain.map.jumpTo({ center: [120.175, 30.265], zoom: 13 }));
  await sleep(1500);

  // 3D cells by flow.
  await page.keyboard.press('2');
  await sleep(3000);
  await shot(page, 'cells-3d.png');
  await page.keyboard.press('2');
  await page.context().close();

  // Intersection: a police officer's view of a signalised intersection and its recommended plan.
  const pol = await openApp(browser, server, 'police', { viewport: { width: 1440, height: 900 } });
  await waitFor(() => pol.page.evaluate(() => window.citybrain.cityMap.loaded), { what: 'map' });
  const net = (await apiCall(server, '/api/v1/network?zoom=14')).json;
  let node = null;
  for (const id of [...new Set(net.features.map((f) => f.properties.to))]) {
    const r = await apiCall(server, `/api/v1/intersections/${encodeURIComponent(id)}`);
    if (r.json?.signalised && r.json.approaches.length >= 4 && r.json.approaches.filter((a) => a.state).length >= 2) { node = r.json; break; }
  }
  if (node) {
    await pol.page.evaluate(([lng, lat]) => window.citybrain.cityMap.map.jumpTo({ center: [lng + 0.004, lat], zoom: 16 }), [node.lng, node.lat]);
    await sleep(2500);
    await pol.page.evaluate((id) => window.citybrain.intersections.open(id, '300s').then(() => window.citybrain.cityMap.select('intersection', id)), node.id);
    await sleep(1500);
    await shot(pol.page, 'intersection.png');
  }
  await pol.context.close();

  // Replay: a planner replays the last minutes at 10×, with the time bar.
  const pl = await openApp(browser, server, 'planner', { viewport: { width: 1440, height: 900 } });
  await waitFor(() => renderedCells(pl.page), { timeout: 30_000, what: 'cells' });
  await pl.page.evaluate(() => document.getElementById('replay-open').click()); // a click that does not wait for a busy page to settle
  await sleep(500);
  await shot(pl.page, 'replay-form.png');
  await pl.page.evaluate(() => document.getElementById('replay-start').click());
  await pl.page.waitForSelector('#timebar:not([hidden])', { timeout: 15_000 });
  await waitFor(() => renderedCells(pl.page), { timeout: 30_000, what: 'replayed cells' });
  await sleep(4000);
  await shot(pl.page, 'replay.png');
  await pl.page.evaluate(() => document.getElementById('tb-live').click());
  await pl.context.close();

  // Video wall (2560×1440, wall mode), viewer.
  const wall = await openApp(browser, server, 'viewer', { viewport: { width: 2560, height: 1440 } });
  await wall.page.evaluate(() => document.documentElement.classList.add('wall'));
  await waitFor(() => renderedCells(wall.page), { timeout: 30_000, what: 'cells' });
  await sleep(8000);
  await shot(wall.page, 'video-wall.png');
  void TOKENS; void apiCall;
} finally {
  await browser.close();
  await server.stop();
}
