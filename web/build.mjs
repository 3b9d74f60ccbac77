// Builds the command center into dist/ with esbuild: src/main.js → app.js (MapLibre GL JS bundled, its
// worker inlined), src/style.css (+ MapLibre's CSS) → app.css, src/index.html copied. No network, no CDN.
//   node build.mjs            minified production build
//   node build.mjs --watch    rebuild on change (development)
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const watch = process.argv.includes('--watch');

// Clean everything but the committed placeholder.
fs.mkdirSync(dist, { recursive: true });
for (const f of fs.readdirSync(dist)) {
  if (f !== 'README.md') fs.rmSync(path.join(dist, f), { recursive: true, force: true });
}

const opts = {
  entryPoints: { app: path.join(here, 'src/main.js'), style: path.join(here, 'src/style.css') },
  bundle: true,
  outdir: dist,
  entryNames: '[name]',
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  legalComments: 'external',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.svg': 'text' },
};

function copyStatic() {
  fs.copyFileSync(path.join(here, 'src/index.html'), path.join(dist, 'index.html'));
}

if (watch) {
  const ctx = await esbuild.context({ ...opts, plugins: [{ name: 'static', setup(b) { b.onEnd(copyStatic); } }] });
  await ctx.watch();
  console.log('watching src/ → dist/');
} else {
  const r = await esbuild.build({ ...opts, metafile: true });
  copyStatic();
  const sizes = Object.entries(r.metafile.outputs).map(([f, o]) => `${path.basename(f)} ${(o.bytes / 1024).toFixed(0)} KiB`);
  console.log('web: built dist/ (' + sizes.join(', ') + ')');
}
