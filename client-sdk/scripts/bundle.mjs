#!/usr/bin/env node
/**
 * Builds the browser bundle (SDK + msgpackr, ESM, minified): dist/browser/sluice.min.js.
 * Browsers, Workers and Deno load this one file; `--report` prints its size.
 * esbuild bundles; terser minifies (about 4% smaller than esbuild's minifier here, which keeps
 * the bundle inside its 20 KB gzip budget).
 */
import { build } from 'esbuild';
import { minify } from 'terser';
import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = new URL('../dist/browser/', import.meta.url).pathname;
const bundled = await build({
  entryPoints: [new URL('../src/index.ts', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: 'external',
  outfile: `${dir}sluice.js`,
  write: false,
  logLevel: 'warning',
});
const js = bundled.outputFiles.find((f) => f.path.endsWith('.js')).text;
const map = bundled.outputFiles.find((f) => f.path.endsWith('.map')).text;
const out = await minify(js, {
  module: true,
  compress: { passes: 3 },
  sourceMap: { content: map, url: 'sluice.min.js.map' },
});
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}sluice.min.js`, out.code);
writeFileSync(`${dir}sluice.min.js.map`, out.map);
if (process.argv.includes('--report')) {
  const gz = gzipSync(out.code, { level: 9 }).length;
  console.log(`sluice.min.js: ${out.code.length} bytes minified, ${gz} bytes gzip (budget 20,480)`);
}
