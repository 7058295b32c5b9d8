import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readableArtifactDir, resolveArtifactPath } from '../../../src/simulate/artifact.js';
import { formatProgress, formatVersionReport, type VersionReport } from '../../../src/simulate/report.js';

const base: VersionReport = {
  version: 'v12',
  parent: 'v11',
  status: 'promoted',
  holdoutAuc: 0.8123,
  labels: 120,
  artifactLocation: 'acft-data/models/v12',
  evaluation: { kind: 'evaluated', auc: 0.79, size: 1000, ms: 900 },
};

describe('simulator reports', () => {
  it('prints one line per version with both AUCs', () => {
    assert.equal(
      formatVersionReport(base),
      'version v12 (promoted, parent v11): holdout AUC 0.812 (daemon) / evaluation AUC 0.790 (simulator) after 120 labels',
    );
    assert.equal(
      formatVersionReport({
        ...base,
        parent: null,
        holdoutAuc: null,
        evaluation: { kind: 'failed', error: 'artifact unreadable: /x does not exist here' },
      }),
      'version v12 (promoted, parent none): holdout AUC n/a (daemon) / not evaluated: artifact unreadable: /x does not exist here after 120 labels',
    );
    assert.equal(
      formatVersionReport({ ...base, status: 'rejected', evaluation: { kind: 'skipped', why: 'rejected' } }),
      'version v12 (rejected, parent v11): holdout AUC 0.812 (daemon) after 120 labels',
    );
  });

  it('prints a progress line', () => {
    const line = formatProgress({
      candidatesSent: 100,
      candidatesPlanned: 200,
      streamFinished: false,
      requestsReceived: 25,
      requestsUnknown: 1,
      requestsInvalid: 0,
      requestsDuplicate: 0,
      answersSent: 20,
      answersPending: 4,
      unsolicitedSent: 3,
      noisyLabels: 0,
      versionsPromoted: 1,
      versionsRejected: 0,
      versionsInvalid: 0,
      evaluations: 1,
      evaluationFailures: 0,
      lastAuc: { version: 'v1', holdoutAuc: 0.7, evaluationAuc: 0.75, labels: 25 },
      errors: 0,
      elapsedMs: 6000,
      streamMs: 5000,
    });
    assert.equal(
      line,
      'candidates 100/200 (20.0/s), requests 25 (unknown 1, invalid 0), answers 20 (+4 pending), unsolicited 3, versions 1 promoted / 0 rejected, v1: holdout 0.700 / evaluation 0.750',
    );
  });
});

describe('artifact locations', () => {
  it('resolves paths and file URLs, and refuses other URLs', () => {
    assert.deepEqual(resolveArtifactPath('models/v1', '/data'), {
      ok: true,
      dir: path.resolve('/data/models/v1'),
    });
    assert.deepEqual(resolveArtifactPath('/abs/v1', '/data'), { ok: true, dir: path.resolve('/abs/v1') });
    assert.deepEqual(resolveArtifactPath(pathToFileURL('/abs/v2').href, '/data'), {
      ok: true,
      dir: path.resolve('/abs/v2'),
    });
    const s3 = resolveArtifactPath('s3://bucket/models/v1', '/data');
    assert.equal(s3.ok, false);
    assert.match(s3.ok ? '' : s3.reason, /s3: URL, not a local directory/);
  });

  it('accepts a readable directory only', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'acft-sim-artifact-'));
    try {
      await writeFile(path.join(dir, 'file'), 'x');
      assert.deepEqual(await readableArtifactDir(dir, '/'), { ok: true, dir });
      const file = await readableArtifactDir('file', dir);
      assert.match(file.ok ? '' : file.reason, /is not a directory/);
      const missing = await readableArtifactDir('nope', dir);
      assert.match(missing.ok ? '' : missing.reason, /does not exist here/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
