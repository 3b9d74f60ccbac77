// Saves screenshots of the main screens into the directory given (docs/screenshots): login, the live map on
// a laptop, a cell detail with its charts, the incident queue with a selected incident, 3D cells, and the
// video-wall layout. Run by scripts/web-screenshots.sh.
import fs from 'node:fs';
import path from 'node:path';
import { TOKENS, apiCall, launchBrowser, openApp, renderedCells, sleep, startServer, waitFor } from './harness.mjs';

const out = path.resolve(process.argv[2] || '../docs/screenshots');
fs.mkdirSync(out, { recursive: true });
const server = await startServer({ demo: true });
const browser = await launchBrowser();
const shot = (page, name) => page.screenshot({ path: path.join(out, name) }).then(() => console.log('wrote', path.join(out, name)));
try {
  // Login.
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const lp = await ctx.newPage();
  await lp.goto(server.url + '/');
  await lp.waitForSelector('#login-token', { state: 'visible' });
  await shot(lp, 'login.png');
  await ctx.close();

  // Laptop: commander, live city, let history and incidents build up.
  const { page } = await openApp(browser, server, 'commander', { viewport: { width: 1440, height: 900 } });
  await waitFor(() => renderedCells(page), { timeout: 30_000, what: 'cells' });
  await sleep(40_000);
  await shot(page, 'main.png');

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

  // 3D cells by flow.
  await page.keyboard.press('2');
  await sleep(3000);
  await shot(page, 'cells-3d.png');
  await page.keyboard.press('2');
  await page.context().close();

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
