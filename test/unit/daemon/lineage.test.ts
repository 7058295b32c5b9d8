import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { m0VersionId } from '../../../src/daemon/initial-model.js';
import {
  LineageMismatchError,
  checkpointLineage,
  foreignVersionsMessage,
  splitByLineage,
  withLineage,
} from '../../../src/daemon/lineage.js';
import type { ModelVersionMeta } from '../../../src/model/model-store.js';

const meta = (version: string, m0?: string): ModelVersionMeta => ({
  version,
  parent: null,
  createdAt: '2026-12-01T00:00:00.000Z',
  info: { status: 'promoted', ...(m0 !== undefined ? { m0 } : {}) },
});

void describe('M0 identity', () => {
  void it('hashes the topology, the weights and the head: another M0 is another id', () => {
    const topology = { class_name: 'Sequential', config: { layers: [{ class_name: 'Conv2D' }] } };
    const a = m0VersionId(topology, 'a'.repeat(64), { numClasses: 2, seed: 1 });
    assert.match(a, /^m0-[0-9a-f]{12}$/);
    assert.equal(m0VersionId(topology, 'a'.repeat(64), { numClasses: 2, seed: 1 }), a, 'deterministic');
    assert.notEqual(m0VersionId(topology, 'b'.repeat(64), { numClasses: 2, seed: 1 }), a, 'other weights');
    assert.notEqual(m0VersionId({ ...topology, extra: 1 }, 'a'.repeat(64), { numClasses: 2, seed: 1 }), a);
    assert.notEqual(m0VersionId(topology, 'a'.repeat(64), { numClasses: 3, seed: 1 }), a, 'another head');
    assert.notEqual(
      m0VersionId(topology, 'a'.repeat(64), { numClasses: 2, seed: 2 }),
      a,
      'another head seed',
    );
    assert.notEqual(m0VersionId(topology, 'a'.repeat(64), null), a, 'its own head');
  });
});

void describe('lineages', () => {
  void it('serves only versions recorded as descending from this M0', () => {
    const { ours, foreign } = splitByLineage(
      [meta('mv-1', 'm0-aaa'), meta('mv-2', 'm0-bbb'), meta('mv-3'), meta('mv-4', 'm0-aaa')],
      'm0-aaa',
    );
    assert.deepEqual(
      ours.map((v) => v.version),
      ['mv-1', 'mv-4'],
    );
    assert.deepEqual(
      foreign.map((v) => v.version),
      ['mv-2', 'mv-3'],
    );
    const message = foreignVersionsMessage(foreign, '/data/models', '/models/cad64', 'm0-aaa');
    assert.match(message, /^The model store \/data\/models holds 2 version\(s\) of another M0/);
    assert.match(message, /ACFT_MODEL_M0_PATH=\/models\/cad64 \(M0 m0-aaa\)/);
    assert.match(message, /m0-bbb, unrecorded/);
  });

  void it('a checkpoint records the M0 it was built on; one built on another stops the start in one sentence', () => {
    const file = withLineage({ format: 'acft-checkpoint/1' }, 'm0-aaa');
    assert.equal(checkpointLineage(JSON.parse(JSON.stringify(file))), 'm0-aaa');
    assert.equal(checkpointLineage({ format: 'acft-checkpoint/1' }), undefined);
    const error = new LineageMismatchError('/state', 'm0-aaa', '/models/new', 'm0-bbb');
    assert.equal(error.code, 'LINEAGE_MISMATCH');
    assert.match(error.message, /ACFT_MODEL_M0_PATH=\/models\/new/);
    assert.equal(error.message.split('. ').length, 1, 'one sentence');
  });
});
