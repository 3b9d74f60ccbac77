// The labels (src/strings.js): every key used by the app (t('…') in src/*.js, data-i18n* in index.html) has an
// English label, every English label has a Chinese one with the same placeholders, and the Chinese ones are
// Chinese. No browser needed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EN, ZH } from '../src/strings.js';

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src');
const placeholders = (v) => (typeof v === 'function' ? ['fn'] : [...v.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());

test('every English label has a Chinese one with the same placeholders', () => {
  const missing = Object.keys(EN).filter((k) => !(k in ZH));
  assert.deepEqual(missing, [], 'keys without a Chinese label');
  const extra = Object.keys(ZH).filter((k) => !(k in EN));
  assert.deepEqual(extra, [], 'Chinese labels without an English one');
  for (const k of Object.keys(EN)) {
    assert.deepEqual(placeholders(ZH[k]), placeholders(EN[k]), `placeholders of ${k}`);
    if (typeof EN[k] === 'function') assert.equal(typeof ZH[k](({ n: 2 })), 'string');
  }
  const latinOnly = Object.entries(ZH).filter(([k, v]) => typeof v === 'string' && !/[\u4e00-\u9fff]/.test(v) && v.replace(/\{\w+\}/g, '').trim().length > 3
    && !/^(method|field)\./.test(k) && !['kpi.tpi.tip'].includes(k));
  assert.deepEqual(latinOnly.map(([k, v]) => `${k}: ${v}`).filter((s) => !/PM2\.5|Y =|WebSocket/.test(s)), [], 'Chinese labels with no Chinese in them');
});

test('every key the app uses has a label', () => {
  const used = new Set();
  for (const f of fs.readdirSync(src).filter((f) => f.endsWith('.js'))) {
    const s = fs.readFileSync(path.join(src, f), 'utf8');
    for (const m of s.matchAll(/\bt\('([a-z0-9_.]+)'/gi)) used.add(m[1]);
  }
  const html = fs.readFileSync(path.join(src, 'index.html'), 'utf8');
  for (const m of html.matchAll(/data-i18n(?:-title|-aria|-placeholder|-empty)?="([^"]+)"/g)) used.add(m[1]);
  const missing = [...used].filter((k) => !(k in EN) && !k.endsWith('.') && k !== 'key'); // 'group.' + code: computed keys
  assert.deepEqual(missing, [], 'keys used without a label');
  assert.ok(used.size > 200, `only ${used.size} keys used: is the scan broken?`);
});
