#!/usr/bin/env node
/**
 * Builds the browser bundles (ESM, minified) in dist/browser/:
 * - sluice.min.js: the SDK + msgpackr. Browsers, Workers and Deno load this one file.
 * - token.min.js: `mintToken` alone, for edge workers that sign tokens (a page never should).
 * - consumer.min.js: `createConsumer` alone, the HTTP consumer-group member for edge workers (no msgpackr).
 * `--report` prints the sizes. esbuild bundles; terser minifies (about 4% smaller than esbuild's
 * minifier here, which keeps the SDK inside its 20 KB gzip budget). The source maps carry their
 * sources (`sourcesContent`): msgpackr's files are not in the published package, so a map that
 * only named them would not resolve.
 */
import { build } from 'esbuild';
import { minify } from 'terser';
import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = new URL('../dist/browser/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });

async function bundle(entry, name) {
  const bundled = await build({
    entryPoints: [new URL(`../src/${entry}`, import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'external',
    outfile: `${dir}${name}.js`,
    write: false,
    logLevel: 'warning',
  });
  const js = bundled.outputFiles.find((f) => f.path.endsWith('.js')).text;
  const map = bundled.outputFiles.find((f) => f.path.endsWith('.map')).text;
  const out = await minify(js, {
    module: true,
    compress: { passes: 3 },
    sourceMap: { content: map, url: `${name}.min.js.map`, includeSources: true },
  });
  writeFileSync(`${dir}${name}.min.js`, out.code);
  writeFileSync(`${dir}${name}.min.js.map`, out.map);
  if (process.argv.includes('--report')) {
    const gz = gzipSync(out.code, { level: 9 }).length;
    console.log(`${name}.min.js: ${out.code.length} bytes minified, ${gz} bytes gzip`);
  }
}

await bundle('index.ts', 'sluice');
await bundle('token.ts', 'token');
await bundle('http-consumer.ts', 'consumer');
