import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', path.resolve('src/cli/main.ts')];

describe('acft CLI', () => {
  it('prints its version and each command help with defaults', async () => {
    const version = await run('node', [...CLI, '--version']);
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
    const help = await run('node', [...CLI, 'bench', '--help']);
    assert.match(help.stdout, /--strategies <list>/);
    assert.match(help.stdout, /default: 25/);
    assert.match(help.stdout, /--quick/);
  });

  it('rejects a bad flag value with one sentence naming the option', async () => {
    await assert.rejects(run('node', [...CLI, 'bench', '--b', 'many']), (e: { stderr: string }) => {
      assert.match(e.stderr, /--b must be an integer >= 1, got 'many'/);
      return true;
    });
    await assert.rejects(
      run('node', [...CLI, 'bench', '--strategies', 'magic']),
      /unknown learning strategy 'magic'/,
    );
  });

  it('runs a tiny benchmark end to end on Fashion-MNIST and writes JSON, markdown and SVG', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'acft-bench-'));
    try {
      const { stdout } = await run(
        'node',
        [
          ...CLI,
          'bench',
          '--strategies',
          'rft,acft-hq',
          '--policies',
          'paper,replay',
          '--pool-size',
          '80',
          '--eval-size',
          '60',
          '--eval-split',
          'validation',
          '--m',
          '2',
          '--b',
          '5',
          '--steps',
          '2',
          '--epochs',
          '1',
          '--seeds',
          '1,2',
          '--workers',
          '2',
          '--out',
          out,
        ],
        { timeout: 240_000 },
      );
      assert.match(stdout, /backend (wasm|cpu|tensorflow|tensorflow-gpu)/);
      const json = JSON.parse(await readFile(path.join(out, 'bench.json'), 'utf8')) as {
        results: { strategy: string; policy: string; seed: number; curve: { labels: number }[] }[];
        groups: { key: string }[];
      };
      // RFT once per seed (no policy knob changes it), ACFT(HQ) per policy and seed.
      assert.equal(json.results.length, 2 + 4);
      for (const r of json.results) {
        assert.deepEqual(
          r.curve.map((p) => p.labels),
          [0, 5, 10],
        );
      }
      assert.equal(json.groups.length, 3);
      assert.match(await readFile(path.join(out, 'bench.md'), 'utf8'), /\| ACFT\(HQ\) \|/);
      assert.match(await readFile(path.join(out, 'learning-curves.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>$/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
