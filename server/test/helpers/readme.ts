/**
 * The runnable code blocks of the READMEs, so that tests can run them as written (readme.test.ts)
 * and type-check them against the packed packages (pack.test.ts).
 *
 * Marking (documented in the root README, "Repository"): a fenced block whose info string is
 * `ts run` or `js run` is a complete ES module that must run to completion (exit 0, nothing on
 * stderr) against a fresh gateway. GitHub and npm show it by its first word, as any ts/js block.
 * A `text output` block right after it holds its exact stdout; `…` in it matches any text on one line.
 * The address `127.0.0.1:9400` (or `localhost:9400`) in a block stands for the gateway under test.
 *
 * To extend: mark another block `run`, or add a README to READMES. A README listed here with no
 * runnable block fails the test, so marks cannot vanish unnoticed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (server/dist/test/helpers → four levels up). */
export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/** The READMEs whose `run` blocks are tested, relative to the repository root. */
export const READMES = ['README.md', 'client-sdk/README.md', 'server/README.md'];

export interface Example {
  /** `README.md:123` — where the block starts, for failure messages. */
  where: string;
  lang: 'ts' | 'js';
  code: string;
  /** Its expected stdout, when a `text output` block follows it. */
  output: string | undefined;
}

interface Block { line: number; info: string[]; body: string }

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i]!.startsWith(fence) && lines[i]!.trim() === fence); i++) body.push(lines[i]!);
    out.push({ line: start + 1, info: open[2]!.trim().split(/\s+/).filter(Boolean), body: body.join('\n') + '\n' });
  }
  return out;
}

/** The `run` blocks of one README (path relative to the repository root). */
export function examples(readme: string): Example[] {
  const text = readFileSync(REPO + readme, 'utf8');
  const all = blocks(text);
  const lines = text.split('\n');
  const found: Example[] = [];
  all.forEach((b, i) => {
    const [lang, ...flags] = b.info;
    if (!flags.includes('run')) return;
    if (lang !== 'ts' && lang !== 'js') throw new Error(`${readme}:${b.line}: only ts and js blocks can be marked run, not "${lang}"`);
    const next = all[i + 1];
    // "Right after": only blank lines between the closing fence and the output block.
    const between = next ? lines.slice(b.line + b.body.split('\n').length, next.line - 1) : [];
    const isOutput = next && next.info[0] === 'text' && next.info.includes('output') && between.every((l) => l.trim() === '');
    found.push({ where: `${readme}:${b.line}`, lang, code: b.body, output: isOutput ? next.body : undefined });
  });
  return found;
}

/** The code with the README's gateway address replaced by the one under test (`host:port`). */
export function pointAt(code: string, hostPort: string): string {
  return code.replace(/\b(?:127\.0\.0\.1|localhost):9400\b/g, hostPort);
}

/** Whether stdout is what a `text output` block says (`…` matches any text within a line). */
export function matchesOutput(stdout: string, expected: string): boolean {
  const pattern = expected.trim().split('…').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^\\n]*');
  return new RegExp(`^${pattern}$`).test(stdout.trim());
}
