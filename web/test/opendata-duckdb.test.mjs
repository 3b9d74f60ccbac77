// Open data (issue 17): a day of traffic posted to the real binary is published as Parquet; the catalogue
// lists it, DuckDB reads it back, and no file carries a vehicle id.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TOKENS, apiCall, startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer({ demo: false }); }, { timeout: 90_000 });
after(async () => { await server?.stop(); });

test('a day of open data opens in DuckDB, is in the catalogue and carries no vehicle id', { timeout: 120_000 }, async () => {
  const day = new Date(Date.now() - 24 * 3600_000).toISOString().slice(0, 10); // yesterday (UTC): complete
  const t0 = Date.parse(day + 'T08:00:00Z');
  const pts = [[30.2528, 120.1675], [30.2581, 120.1662], [30.2611, 120.1588]];
  const ev = [];
  for (let m = 0; m < 15; m++) for (const [i, [lat, lng]] of pts.entries()) for (let v = 0; v < 4; v++)
    ev.push({ kind: 'probe', ts: t0 + m * 60_000 + v * 1000, id: `veh-${i}-${v}`, lat, lng, speed_kmh: 20 + 5 * v });
  ev.push({ kind: 'probe', ts: Date.now() - 5000, id: 'veh-now', lat: 30.2528, lng: 120.1675, speed_kmh: 30 });
  const posted = await apiCall(server, '/api/v1/events', { token: TOKENS.feed, method: 'POST', contentType: 'application/x-ndjson',
    body: ev.map((e) => JSON.stringify(e)).join('\n') });
  assert.equal(posted.status, 200, posted.text);

  let cat;
  for (let i = 0; i < 100; i++) {
    cat = (await apiCall(server, '/api/v1/opendata', { token: TOKENS.viewer })).json;
    const cells = cat?.['dcat:dataset']?.find((d) => d['dct:identifier'] === 'cells');
    if (cells?.['dcat:distribution']?.some((x) => x['dcat:downloadURL'].endsWith(`/cells/${day}.parquet`) && x['cb:complete'])) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const urls = cat['dcat:dataset'].flatMap((d) => d['dcat:distribution'].map((x) => x['dcat:downloadURL']));
  assert.ok(urls.some((u) => u.endsWith(`/cells/${day}.parquet`)), `catalogue lists cells/${day}.parquet`);
  assert.ok(urls.some((u) => u.endsWith(`/incidents/${day}.geojson`)), 'and the incidents');

  const r = await fetch(`${server.url}/api/v1/opendata/cells/${day}.parquet`, { headers: { Authorization: `Bearer ${TOKENS.viewer}` } });
  assert.equal(r.status, 200, await r.clone().text());
  const buf = Buffer.from(await r.arrayBuffer());
  assert.ok(!buf.includes('veh-'), 'the file carries no vehicle id');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'citybrain-opendata-'));
  const file = path.join(dir, 'cells.parquet');
  fs.writeFileSync(file, buf);
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  try {
    const rows = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS();
    const cols = (await rows(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((c) => c.column_name);
    assert.deepEqual(cols, ['bin_start', 'cell', 'lat', 'lng', 'speed_kmh', 'samples', 'free_flow_kmh', 'congestion', 'tpi', 'level']);
    const [agg] = await rows(`SELECT count(*)::INTEGER AS n, count(DISTINCT cell)::INTEGER AS cells, sum(samples)::INTEGER AS samples,
      round(avg(speed_kmh), 2) AS speed, min(bin_start)::VARCHAR AS first FROM read_parquet('${file}')`);
    assert.equal(agg.cells, 3);
    assert.equal(agg.samples, 15 * 3 * 4, 'every observation counted once');
    assert.equal(agg.n, 3 * 3, 'three 5-minute bins per cell');
    assert.equal(agg.speed, 27.5);
    assert.match(agg.first, new RegExp(`^${day} 08:00:00`));
  } finally {
    con.closeSync?.();
    db.closeSync?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
