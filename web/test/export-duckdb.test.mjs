// Exports analysts can read (issue 18): events posted to the real binary are exported as Parquet over the API
// (GET /api/v1/export, planner) and opened with DuckDB (@duckdb/node-api, which ships its library): kinds are
// strings ("probe", not 1), and the times and counts are the ones posted.
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

test('a Parquet export opens in DuckDB with kinds as strings, and the times and counts posted', { timeout: 120_000 }, async () => {
  const t0 = Math.floor((Date.now() - 30 * 60_000) / 60_000) * 60_000; // half an hour ago, on the minute
  const ev = [];
  for (let i = 0; i < 40; i++) ev.push({ kind: 'probe', ts: t0 + i * 5000, id: `veh-${i % 7}`, lat: 30.25 + i * 1e-4, lng: 120.17, speed_kmh: 20 + (i % 10) });
  for (let i = 0; i < 5; i++) ev.push({ kind: 'video', ts: t0 + 60_000 + i * 1000, id: 'cam-9', lat: 30.251, lng: 120.171, type: 'stalled_vehicle', confidence: 0.8 });
  for (let i = 0; i < 3; i++) ev.push({ kind: 'detector', ts: t0 + 90_000 + i * 30_000, id: 'det-1', lat: 30.252, lng: 120.172, flow_vph: 900, occupancy: 0.2, speed_kmh: 35, interval_s: 30 });
  const posted = await apiCall(server, '/api/v1/events', { token: TOKENS.feed, method: 'POST', contentType: 'application/x-ndjson',
    body: ev.map((e) => JSON.stringify(e)).join('\n') });
  assert.equal(posted.status, 200, posted.text);
  assert.equal(posted.json.accepted, ev.length);

  const from = new Date(t0).toISOString(), to = new Date(t0 + 10 * 60_000).toISOString();
  const r = await fetch(`${server.url}/api/v1/export?from=${from}&to=${to}&format=parquet`, { headers: { Authorization: `Bearer ${TOKENS.planner}` } });
  assert.equal(r.status, 200, await r.clone().text());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'citybrain-duckdb-'));
  const file = path.join(dir, 'export.parquet');
  fs.writeFileSync(file, Buffer.from(await r.arrayBuffer()));

  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  try {
    const rows = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS();
    const types = Object.fromEntries((await rows(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((c) => [c.column_name, c.column_type]));
    assert.match(types.kind, /VARCHAR|ENUM/, `kind is read as ${types.kind}`);
    assert.match(types.ts, /TIMESTAMP/, `ts is read as ${types.ts}`);
    const byKind = Object.fromEntries((await rows(`SELECT kind, count(*)::INTEGER AS n FROM read_parquet('${file}') GROUP BY kind`)).map((x) => [x.kind, x.n]));
    assert.deepEqual(byKind, { probe: 40, video: 5, detector: 3 });
    const [span] = await rows(`SELECT epoch_ms(min(ts))::BIGINT AS lo, epoch_ms(max(ts))::BIGINT AS hi, count(DISTINCT id)::INTEGER AS ids FROM read_parquet('${file}')`);
    assert.equal(Number(span.lo), t0, 'first event time');
    assert.equal(Number(span.hi), t0 + 39 * 5000, 'last event time');
    assert.equal(span.ids, 9, '7 vehicles, a camera and a detector');
    const [vid] = await rows(`SELECT type, round(avg(confidence), 2) AS c FROM read_parquet('${file}') WHERE kind = 'video' GROUP BY type`);
    assert.equal(vid.type, 'stalled_vehicle');
    assert.equal(vid.c, 0.8);
  } finally {
    con.closeSync?.();
    db.closeSync?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
