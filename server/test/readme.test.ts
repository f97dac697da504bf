/**
 * The READMEs' examples run as written: every block marked `run` (see helpers/readme.ts) runs as
 * its own Node process against a fresh in-process gateway, resolving `@sluice/client`,
 * `@sluice/server` and `ws` as an application in this repository would; it must exit 0 within
 * 20 s, write nothing to stderr, and print its `text output` block when it has one. TypeScript is
 * only stripped here (transpileModule); pack.test.ts type-checks the same blocks against the
 * packed packages.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { startGateway } from './helpers/gateway.js';
import { examples, matchesOutput, pointAt, READMES, REPO, type Example } from './helpers/readme.js';

/** Inside the repository, so that bare imports resolve through its node_modules. */
const DIR = `${REPO}server/dist/readme-examples/`;
const TIMEOUT_MS = 20_000;

function run(file: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
  const proc = spawn(process.execPath, [file], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise((resolve) => proc.once('close', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal, stdout, stderr });
  }));
}

async function runExample(ex: Example): Promise<void> {
  const gw = await startGateway();
  try {
    const source = pointAt(ex.code, new URL(gw.url).host);
    const js = ex.lang === 'ts'
      ? ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
      : source;
    const file = `${DIR}${ex.where.replace(/[^A-Za-z0-9]+/g, '-')}.mjs`;
    writeFileSync(file, js);
    const r = await run(file);
    const said = `\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
    assert.equal(r.signal, null, `${ex.where}: did not finish within ${TIMEOUT_MS} ms${said}`);
    assert.equal(r.code, 0, `${ex.where}: exit code ${r.code}${said}`);
    assert.equal(r.stderr, '', `${ex.where}: wrote to stderr${said}`);
    if (ex.output !== undefined) assert.ok(matchesOutput(r.stdout, ex.output), `${ex.where}: output differs from its text output block:\n${ex.output}${said}`);
  } finally {
    await gw.close();
  }
}

describe('README examples', () => {
  mkdirSync(DIR, { recursive: true });
  it('an output block is matched exactly, with … for any text within a line', () => {
    assert.ok(matchesOutput('{ offset: 1 }\nepoch x7Yz\n', '{ offset: 1 }\nepoch …'));
    assert.ok(!matchesOutput('{ offset: 2 }\nepoch x7Yz', '{ offset: 1 }\nepoch …'));
    assert.ok(!matchesOutput('a\nb\nc', 'a…c'), '… does not span lines');
    assert.ok(!matchesOutput('a\nb\nextra', 'a\nb'), 'nothing more may be printed');
  });
  for (const readme of READMES) {
    const list = examples(readme);
    it(`${readme} has runnable examples`, () => assert.ok(list.length > 0, `no block marked run in ${readme}`));
    for (const ex of list) it(`${ex.where} runs as written`, () => runExample(ex));
  }
});
