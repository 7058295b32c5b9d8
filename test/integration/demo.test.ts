/**
 * `acft demo` end to end, small: a real broker (KAFKA_BROKERS, else one of its own), the daemon,
 * the simulator, the random baseline in its worker, and a self-contained report.
 *
 *   node --import tsx --test test/integration/demo.test.ts
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { encodeGrayPng } from '../../src/demo/png.js';
import { ProgressLine } from '../../src/demo/progress.js';
import type { DemoResult } from '../../src/demo/result.js';
import { runDemo } from '../../src/demo/run-demo.js';

describe('acft demo', { timeout: 300_000 }, () => {
  let out = '';
  const lines: string[] = [];
  let reportPath = '';
  let jsonPath = '';

  before(async () => {
    out = await mkdtemp(path.join(os.tmpdir(), 'acft-demo-'));
    const ui = new ProgressLine({ stream: { write: (t: string) => lines.push(t) }, plainEveryMs: 0 });
    ({ reportPath, jsonPath } = await runDemo(
      {
        labels: 20,
        b: 8,
        m: 4,
        epochs: 1,
        rate: 200,
        candidates: 300,
        answerDelayMs: 50,
        evalSize: 100,
        seed: 1,
        out,
        httpPort: 0,
        backend: 'auto',
        baseline: true,
        maxMinutes: 4,
        galleryCount: 2,
      },
      ui,
      new AbortController().signal,
    ));
  });

  after(async () => {
    if (out !== '') await rm(out, { recursive: true, force: true });
  });

  it('publishes versions, measures them and runs random selection as long', async () => {
    const result = JSON.parse(await readFile(jsonPath, 'utf8')) as DemoResult;
    assert.ok(result.versions.length >= 1, 'at least one model version');
    const last = result.versions.at(-1)!;
    assert.ok(last.labels >= 20, `the last version has the labels asked for (${last.labels})`);
    assert.ok(
      result.versions.every((v) => v.evaluationAuc !== null),
      'every version measured',
    );
    assert.ok(result.daemonCurve.length >= 2, 'M0 and at least one served version');
    assert.ok(result.baseline !== null);
    assert.equal(result.baseline.curve.length, result.versions.length + 1);
    assert.equal(result.daemonCurve[0]!.labels, 0, 'the curve starts at M0');
    assert.ok(result.requests.total >= 20);
    assert.equal(result.gallery?.most.length, 2);
    assert.ok(
      lines.some((l) => l.includes('labels ')),
      'a status line was printed',
    );
  });

  it('writes a self-contained report with every section', async () => {
    const html = await readFile(reportPath, 'utf8');
    for (const id of ['curve', 'versions', 'classes', 'gallery', 'settings', 'metrics']) {
      assert.match(html, new RegExp(`<section id="${id}">`), id);
    }
    assert.match(html, /acft_candidates_ingested_total/, 'the /metrics snapshot');
    assert.doesNotMatch(html, /<script|<link|\b(?:src|href)="(?!data:)/, 'no scripts or external resources');
    assert.match(html, /src="data:image\/png;base64,/);
  });

  it('encodes PNGs that inflate back to the pixels', () => {
    const pixels = Uint8Array.from({ length: 6 }, (_, i) => i * 40);
    const png = encodeGrayPng(pixels, 3, 2);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const idatAt = png.indexOf('IDAT');
    const length = png.readUInt32BE(idatAt - 4);
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + length));
    assert.deepEqual([...raw], [0, 0, 40, 80, 0, 120, 160, 200]);
  });
});
