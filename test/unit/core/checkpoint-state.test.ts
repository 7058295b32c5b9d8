import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  fromSnapshot,
  InvalidSnapshotError,
  SNAPSHOT_FORMAT,
  toSnapshot,
  type CoreState,
  type Json,
} from '../../../src/core/checkpoint-state.js';
import {
  emptyLabels,
  ingestCandidate,
  ingestFeedback,
  labelsReducer,
  type LabelingConfig,
} from '../../../src/core/labels.js';
import { done, emptyOffsets, markCommitted, track } from '../../../src/core/offsets.js';
import { emptyPool, poolReducer, type NewCandidate } from '../../../src/core/pool.js';
import { planRequests, planWindow } from '../../../src/core/windows.js';

/** A payload as the adapter might keep it: a compact image as a typed array. */
interface Image {
  readonly shape: number[];
  readonly pixels: Float32Array;
}

const encodePayload = (p: Image): Json => ({
  shape: p.shape,
  pixels: Buffer.from(p.pixels.buffer, p.pixels.byteOffset, p.pixels.byteLength).toString('base64'),
});
const decodePayload = (j: Json): Image => {
  const o = j as { shape: number[]; pixels: string };
  const bytes = Buffer.from(o.pixels, 'base64');
  const pixels = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(pixels.buffer).set(bytes);
  return { shape: o.shape, pixels };
};

const config: LabelingConfig = {
  pool: {
    maxCandidates: 6,
    maxBytes: 1e9,
    ttlMs: 5_000,
    leaseMs: 1_000,
    highWatermark: 0.9,
    lowWatermark: 0.5,
    compareVersions: (a, b) => Number(a.slice(1)) - Number(b.slice(1)),
  },
  labels: { holdoutShare: 0.3, maxPending: 3, pendingTtlMs: 2_000 },
};

function cand(id: string, now: number, offset: number): NewCandidate<Image> {
  return {
    id,
    source: { topic: 'candidates', partition: offset % 2, offset },
    arrivedAtMs: now,
    bytes: 16,
    payload: { shape: [2, 2], pixels: Float32Array.from([offset, 0.5, -1.25, 1 / 3]) },
  };
}

function emptyCore(): CoreState<Image> {
  return {
    pool: emptyPool<Image>(),
    labels: emptyLabels<Image>(),
    offsets: emptyOffsets(),
    servedVersion: null,
  };
}

type Step =
  | { kind: 'candidate'; id: number }
  | { kind: 'feedback'; id: number; label: number; annotator: number }
  | { kind: 'score'; id: number; value: number; version: number }
  | { kind: 'request'; b: number }
  | { kind: 'tick' }
  | { kind: 'window' }
  | { kind: 'serve'; version: number };

/** Applies one step at `now` (message offsets count up); returns a comparable trace of effects. */
function apply(s: CoreState<Image>, step: Step, now: number, k: number): unknown[] {
  const id = (n: number) => `c${n}`;
  const labeling = { pool: s.pool, labels: s.labels };
  const msg = { topic: step.kind === 'feedback' ? 'feedback' : 'candidates', partition: 0, offset: k };
  switch (step.kind) {
    case 'candidate': {
      track(s.offsets, msg);
      const effects = ingestCandidate(labeling, cand(id(step.id), now, k), now, config).effects;
      if (k % 3 !== 0) done(s.offsets, msg); // some messages stay in flight
      return effects;
    }
    case 'feedback': {
      track(s.offsets, msg);
      const effects = ingestFeedback(
        labeling,
        { candidateId: id(step.id), label: step.label, annotatorId: `r${step.annotator}`, timeMs: k },
        now,
        config,
      ).effects;
      done(s.offsets, msg);
      markCommitted(s.offsets, [{ ...msg, offset: k - 5 }]);
      return effects;
    }
    case 'score':
      return poolReducer(
        s.pool,
        {
          type: 'scored',
          scores: [
            {
              id: id(step.id),
              value: step.value / 7,
              entropy: step.value / 3,
              diversity: 0.1,
              dominantClass: step.value % 2,
              meanProbs: [step.value / 10, 1 - step.value / 10],
              modelVersion: `v${step.version}`,
              scoredAtMs: now,
            },
          ],
        },
        config.pool,
      ).effects;
    case 'request': {
      poolReducer(s.pool, { type: 'tick', now }, config.pool);
      const plan = planRequests(s.pool, {
        b: step.b,
        seed: k,
        windowSeq: s.labels.windowSeq,
        now,
      });
      return poolReducer(s.pool, plan.event, config.pool).effects;
    }
    case 'tick':
      return [
        ...poolReducer(s.pool, { type: 'tick', now }, config.pool).effects,
        ...labelsReducer(s.labels, { type: 'tick', now }, config.labels).effects,
      ];
    case 'window': {
      if (s.labels.inFlight !== null) {
        return labelsReducer(
          s.labels,
          { type: 'window-completed', seq: s.labels.inFlight.seq, now },
          config.labels,
        ).effects;
      }
      const plan = planWindow(s.labels, 'ACFT(HQ)', (cid) => cid.length % 2, { replayPerClass: 1, seed: 3 });
      return [plan, ...labelsReducer(s.labels, { type: 'window-started', plan, now }, config.labels).effects];
    }
    case 'serve':
      (s as { servedVersion: string | null }).servedVersion = `v${step.version}`;
      return [];
  }
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('candidate' as const), id: fc.integer({ min: 0, max: 9 }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('feedback' as const),
      id: fc.integer({ min: 0, max: 9 }),
      label: fc.integer({ min: 0, max: 1 }),
      annotator: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('score' as const),
      id: fc.integer({ min: 0, max: 9 }),
      value: fc.integer({ min: 0, max: 10 }),
      version: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('request' as const), b: fc.integer({ min: 0, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('window' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('serve' as const), version: fc.integer({ min: 1, max: 3 }) }),
  },
);
const runArb = fc.array(fc.record({ step: stepArb, dt: fc.integer({ min: 0, max: 700 }) }), {
  minLength: 10,
  maxLength: 60,
});

function build(steps: { step: Step; dt: number }[]): { state: CoreState<Image>; now: number } {
  const state = emptyCore();
  let now = 0;
  steps.forEach(({ step, dt }, k) => {
    now += dt;
    apply(state, step, now, k + 10);
  });
  return { state, now };
}

void describe('checkpoint snapshots', () => {
  const sample = [
    ...[0, 1, 2, 3, 4, 5].map((id) => ({ step: { kind: 'candidate', id } as Step, dt: 10 })),
    ...[0, 1, 2, 3].map((id) => ({ step: { kind: 'score', id, value: id + 1, version: 1 } as Step, dt: 10 })),
    { step: { kind: 'request', b: 2 } as Step, dt: 10 },
    { step: { kind: 'feedback', id: 4, label: 1, annotator: 0 } as Step, dt: 10 },
    { step: { kind: 'feedback', id: 4, label: 0, annotator: 1 } as Step, dt: 10 },
    { step: { kind: 'feedback', id: 8, label: 1, annotator: 0 } as Step, dt: 10 }, // waits for its candidate
    { step: { kind: 'window' } as Step, dt: 10 }, // in flight
    { step: { kind: 'serve', version: 2 } as Step, dt: 10 },
  ];

  void it('round-trips exactly through JSON, typed-array payloads included', () => {
    const { state } = build(sample);
    const snap = toSnapshot(state, { encodePayload });
    assert.equal(snap.format, SNAPSHOT_FORMAT);
    assert.equal(snap.servedVersion, 'v2');
    assert.ok(snap.pool.candidates.some((c) => c.state === 'requested' && c.request !== undefined));
    assert.ok(snap.pool.candidates.some((c) => c.score === undefined));
    assert.equal(snap.labels.records.length, 1);
    assert.equal(snap.labels.pending.length, 1);
    assert.ok(snap.labels.inFlight !== null);
    assert.ok(snap.offsets.length >= 2);
    const parsed: unknown = JSON.parse(JSON.stringify(snap));
    assert.deepEqual(parsed, snap, 'JSON-compatible: nothing lost or changed by JSON');
    const restored = fromSnapshot(parsed, { decodePayload });
    assert.deepEqual(toSnapshot(restored, { encodePayload }), snap);
    const c4 = restored.labels.records.get('c4');
    assert.ok(c4 !== undefined);
    assert.ok(c4.payload.pixels instanceof Float32Array);
    assert.deepEqual(c4.payload, state.labels.records.get('c4')?.payload);
  });

  void it('is a copy: changing the state afterwards does not change the snapshot', () => {
    const { state, now } = build(sample);
    const snap = toSnapshot(state, { encodePayload });
    const frozen = JSON.stringify(snap);
    apply(state, { kind: 'score', id: 0, value: 9, version: 3 }, now, 900);
    apply(state, { kind: 'feedback', id: 0, label: 1, annotator: 2 }, now, 901);
    apply(state, { kind: 'window' }, now, 902);
    assert.equal(JSON.stringify(snap), frozen);
  });

  void it('refuses data that is not a snapshot of this format', () => {
    const snap = toSnapshot(emptyCore(), { encodePayload });
    for (const bad of [
      null,
      42,
      [],
      { ...snap, format: 'acft-checkpoint/0' },
      { ...snap, pool: {} },
      { ...snap, offsets: {} },
    ]) {
      assert.throws(
        () => fromSnapshot(bad, { decodePayload }),
        (e: unknown) => e instanceof InvalidSnapshotError && e.code === 'INVALID_SNAPSHOT',
      );
    }
  });

  void it('a restored state behaves exactly like the original', () => {
    fc.assert(
      fc.property(runArb, runArb, (before, after) => {
        const { state: a, now: t0 } = build(before);
        const snap = toSnapshot(a, { encodePayload });
        const b = fromSnapshot(JSON.parse(JSON.stringify(snap)) as unknown, { decodePayload });
        assert.deepEqual(toSnapshot(b, { encodePayload }), snap);
        let now = t0;
        after.forEach(({ step, dt }, k) => {
          now += dt;
          const ea = apply(a, step, now, 1000 + k);
          const eb = apply(b, step, now, 1000 + k);
          assert.deepEqual(eb, ea);
        });
        // Messages in flight at the checkpoint are not in it: after a restore the consumer reads them
        // again from the checkpoint's position, so offsets are compared right after the restore only.
        const { offsets: _oa, ...sa } = toSnapshot(a, { encodePayload });
        const { offsets: _ob, ...sb } = toSnapshot(b, { encodePayload });
        assert.deepEqual(sb, sa);
      }),
      { numRuns: 150 },
    );
  });
});
