import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { emptyLabels, labelsReducer, type LabelsConfig, type LabelsState } from '../../../src/core/labels.js';
import {
  emptyPool,
  outstandingRequests,
  poolReducer,
  type PoolConfig,
  type PoolEffect,
} from '../../../src/core/pool.js';
import { isHeldOut } from '../../../src/core/holdout.js';
import { STRATEGY_CODES } from '../../../src/core/strategies.js';
import {
  aucStandardError,
  canonicalJson,
  planRequests,
  planWindow,
  promotionDecision,
  requestId,
  shouldStartWindow,
  stableHash,
  windowId,
  type WindowIdInputs,
} from '../../../src/core/windows.js';

const labelsConfig: LabelsConfig = { holdoutShare: 0, maxPending: 10, pendingTtlMs: 1000 };

/** Labels `id` with `label` (first label at `now`). */
function label(
  s: LabelsState<string>,
  id: string,
  value: number,
  now = 0,
  cfg = labelsConfig,
  annotatorId = 'r1',
): void {
  labelsReducer(
    s,
    {
      type: 'feedback',
      feedback: { candidateId: id, label: value, annotatorId, timeMs: now },
      now,
      candidate: { id, source: { topic: 't', partition: 0, offset: 0 }, payload: `img-${id}` },
    },
    cfg,
  );
}

/** Runs a window over `q` to completion, training on `train`. */
function completeWindow(s: LabelsState<string>, train: string[], now = 0): void {
  const q = [...s.fresh];
  const trainLabels = train.map((id) => s.records.get(id)?.label ?? -1);
  const plan = {
    seq: s.windowSeq,
    strategy: 'ACFT(HQ)' as const,
    startFrom: 'previous' as const,
    q,
    h: [],
    corrected: [],
    replay: [],
    train,
    trainLabels,
  };
  labelsReducer(s, { type: 'window-started', plan, now }, labelsConfig);
  labelsReducer(s, { type: 'window-completed', seq: plan.seq, now }, labelsConfig);
}

void describe('shouldStartWindow', () => {
  const opts = { b: 3, maxIntervalMs: 1000 };
  void it('starts on b new labels, or when the oldest new label has waited maxIntervalMs', () => {
    const s = emptyLabels<string>();
    assert.equal(shouldStartWindow(s, 1e9, opts), null);
    label(s, 'a', 1, 100);
    label(s, 'b', 0, 200);
    assert.equal(shouldStartWindow(s, 1099, opts), null);
    assert.equal(shouldStartWindow(s, 1100, opts), 'max-interval');
    label(s, 'c', 1, 300);
    assert.equal(shouldStartWindow(s, 300, opts), 'b-labels');
  });

  void it('does not start while a window is in flight, nor count its labels again', () => {
    const s = emptyLabels<string>();
    for (const id of ['a', 'b', 'c']) label(s, id, 1);
    const plan = planWindow(s, 'ACFT(Q)', () => 0, { replayPerClass: 0, seed: 1 });
    labelsReducer(s, { type: 'window-started', plan, now: 0 }, labelsConfig);
    assert.equal(shouldStartWindow(s, 1e9, opts), null);
    for (const id of ['d', 'e', 'f']) label(s, id, 1);
    assert.equal(shouldStartWindow(s, 0, opts), null);
    labelsReducer(s, { type: 'window-completed', seq: 0, now: 0 }, labelsConfig);
    assert.equal(shouldStartWindow(s, 0, opts), 'b-labels');
  });

  void it('does not count held-out labels', () => {
    const cfg = { ...labelsConfig, holdoutShare: 1 };
    const s = emptyLabels<string>();
    for (const id of ['a', 'b', 'c', 'd']) label(s, id, 1, 0, cfg);
    assert.equal(shouldStartWindow(s, 1e9, opts), null);
  });
});

void describe('planWindow', () => {
  /** L = {a:1, b:0, c:1, d:0} trained in window 0; Q = {e:1, f:0}; predictions: a and b wrong. */
  function setup(): LabelsState<string> {
    const s = emptyLabels<string>();
    label(s, 'a', 1);
    label(s, 'b', 0);
    label(s, 'c', 1);
    label(s, 'd', 0);
    completeWindow(s, ['a', 'b', 'c', 'd']);
    label(s, 'e', 1);
    label(s, 'f', 0);
    return s;
  }
  const predicted: Record<string, number> = { a: 0, b: 1, c: 1, d: 0, e: 0, f: 0 };
  const predict = (id: string): number => predicted[id] ?? -1;

  void it('ACFT(HQ): H u Q from the serving model, continuing from it', () => {
    const calls: string[] = [];
    const plan = planWindow(setup(), 'ACFT(HQ)', (id) => (calls.push(id), predict(id)), {
      replayPerClass: 0,
      seed: 1,
    });
    assert.equal(plan.seq, 1);
    assert.equal(plan.startFrom, 'previous');
    assert.deepEqual(plan.q, ['e', 'f']);
    assert.deepEqual(plan.h, ['a', 'b']);
    assert.deepEqual(plan.train, ['a', 'b', 'e', 'f']);
    assert.deepEqual(plan.trainLabels, [1, 0, 1, 0]);
    assert.deepEqual(calls.sort(), ['a', 'b', 'c', 'd'], 'H is computed over L only');
  });

  void it('the other strategies: L u Q (from M0 or continual), Q alone; H only where used', () => {
    const s = setup();
    const lq = planWindow(s, 'ACFT(LQ)', predict, { replayPerClass: 0, seed: 1 });
    assert.deepEqual(lq.train, ['a', 'b', 'c', 'd', 'e', 'f']);
    assert.deepEqual(lq.h, []);
    assert.equal(lq.startFrom, 'previous');
    for (const code of ['RFT(LQ)', 'AFT(LQ)'] as const) {
      const p = planWindow(s, code, predict, { replayPerClass: 0, seed: 1 });
      assert.equal(p.startFrom, 'M0');
      assert.deepEqual(p.train, ['a', 'b', 'c', 'd', 'e', 'f']);
    }
    assert.deepEqual(planWindow(s, 'ACFT(Q)', predict, { replayPerClass: 0, seed: 1 }).train, ['e', 'f']);
    for (const code of STRATEGY_CODES)
      assert.equal(planWindow(s, code, predict, { replayPerClass: 0, seed: 1 }).strategy, code);
  });

  void it('trains again on a trained candidate whose label changed, with its new label', () => {
    const s = setup();
    label(s, 'c', 0, 5, labelsConfig, 'r1');
    const plan = planWindow(s, 'ACFT(Q)', predict, { replayPerClass: 0, seed: 1 });
    assert.deepEqual(plan.corrected, ['c']);
    assert.deepEqual(plan.q, ['e', 'f']);
    assert.deepEqual(plan.train, ['e', 'f', 'c']);
    assert.deepEqual(plan.trainLabels, [1, 0, 0]);
  });

  void it('adds a seeded rehearsal of up to replayPerClass per class from the rest of L', () => {
    const s = emptyLabels<string>();
    const ids = Array.from({ length: 30 }, (_, i) => `l${i}`);
    ids.forEach((id, i) => label(s, id, i % 3));
    completeWindow(s, ids);
    label(s, 'new', 0);
    const opts = { replayPerClass: 2, seed: 7 };
    const a = planWindow(s, 'ACFT(HQ)', () => 0, opts);
    // Predicting 0 for all: H = the labels 1 and 2 (20 ids); replay draws class 0 only.
    assert.equal(a.h.length, 20);
    assert.equal(a.replay.length, 2);
    for (const id of a.replay) assert.equal(s.records.get(id)?.label, 0);
    assert.deepEqual(planWindow(s, 'ACFT(HQ)', () => 0, opts).replay, a.replay, 'deterministic');
    const q = planWindow(s, 'ACFT(Q)', () => 0, opts);
    assert.equal(q.replay.length, 6);
    assert.deepEqual(
      q.replay.map((id) => s.records.get(id)?.label),
      [0, 0, 1, 1, 2, 2],
    );
    assert.deepEqual(q.train, ['new', ...q.replay]);
    const seeds = new Set(
      Array.from({ length: 10 }, (_, seed) =>
        planWindow(s, 'ACFT(Q)', () => 0, { replayPerClass: 2, seed }).replay.join(),
      ),
    );
    assert.ok(seeds.size > 1, 'the seed matters');
  });

  void it('never plans a held-out candidate', () => {
    const cfg = { ...labelsConfig, holdoutShare: 0.5 };
    const s = emptyLabels<string>();
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    ids.slice(0, 20).forEach((id) => label(s, id, 1, 0, cfg));
    completeWindow(s, [...s.fresh]);
    ids.slice(20).forEach((id) => label(s, id, 0, 0, cfg));
    for (const code of STRATEGY_CODES) {
      const p = planWindow(s, code, () => 1, { replayPerClass: 5, seed: 1 });
      for (const id of [...p.train, ...p.q, ...p.h, ...p.replay])
        assert.equal(isHeldOut(id, 0.5), false, `${code} ${id}`);
    }
  });
});

void describe('windowId', () => {
  const base: WindowIdInputs = {
    parentVersion: 'mv-parent',
    strategy: 'ACFT(HQ)',
    train: ['b', 'a', 'c'],
    trainLabels: [1, 0, 1],
    hyperParameters: { lr: 1e-4, epochs: 5, seed: 3 },
  };

  void it('is a function of the inputs only: order of ids and of hyper-parameter keys does not matter', () => {
    const id = windowId(base);
    assert.match(id, /^mv-[0-9a-f]{32}$/);
    assert.equal(windowId({ ...base }), id);
    assert.equal(windowId({ ...base, train: ['c', 'a', 'b'], trainLabels: [1, 0, 1] }), id);
    assert.equal(windowId({ ...base, hyperParameters: { seed: 3, epochs: 5, lr: 1e-4 } }), id);
  });

  void it('changes with the parent, the strategy, a label, an id or a hyper-parameter', () => {
    const id = windowId(base);
    const variants: WindowIdInputs[] = [
      { ...base, parentVersion: null },
      { ...base, parentVersion: 'mv-other' },
      { ...base, strategy: 'ACFT(LQ)' },
      { ...base, trainLabels: [1, 1, 1] },
      { ...base, train: ['b', 'a', 'd'] },
      { ...base, train: ['b', 'a'], trainLabels: [1, 0] },
      { ...base, hyperParameters: { lr: 1e-3, epochs: 5, seed: 3 } },
    ];
    const ids = new Set(variants.map((v) => windowId(v)));
    assert.equal(ids.size, variants.length);
    assert.ok(!ids.has(id));
  });

  void it('accepts another hash function', () => {
    assert.equal(
      windowId(base, (text) => `len${text.length}`),
      `mv-len${
        canonicalJson([
          'acft-window/1',
          'mv-parent',
          'ACFT(HQ)',
          [
            ['a', 0],
            ['b', 1],
            ['c', 1],
          ],
          base.hyperParameters,
        ]).length
      }`,
    );
  });

  void it('stableHash is pinned: the same on every platform and version', () => {
    assert.equal(stableHash(''), '027ae52ecfc796215593990d4b41437c');
    assert.equal(stableHash('acft'), 'ef37811feb3f73bb63a962064129ae44');
    assert.equal(requestId('c1', 'v1', 0), 'lr-38f10fa8db06e4b319107640313e42c9');
  });
});

void describe('promotionDecision', () => {
  void it('promotes unless worse than the parent by more than the tolerance', () => {
    assert.equal(promotionDecision(0.8, 0.8, 0), 'promoted');
    assert.equal(promotionDecision(0.79, 0.8, 0.02), 'promoted');
    assert.equal(promotionDecision(0.78, 0.8, 0.02), 'promoted'); // exactly at the tolerance
    assert.equal(promotionDecision(0.77, 0.8, 0.02), 'rejected');
    assert.equal(promotionDecision(0.9, 0.8, 0), 'promoted');
    assert.equal(promotionDecision(0.79, 0.8, -1), 'rejected'); // a negative tolerance counts as 0
  });

  void it('promotes without a parent AUC; rejects a candidate without one against a parent with one', () => {
    assert.equal(promotionDecision(0.5, null, 0), 'promoted');
    assert.equal(promotionDecision(0.5, NaN, 0), 'promoted');
    assert.equal(promotionDecision(NaN, NaN, 0), 'promoted');
    assert.equal(promotionDecision(NaN, null, 0), 'promoted');
    assert.equal(promotionDecision(NaN, 0.7, 0.05), 'rejected');
  });

  void it('rejects a version below the AUC floor whatever its parent scored, and not one without an AUC', () => {
    // Issue 14: a version with AUC 0 was promoted because its parent's was 0 too.
    assert.equal(promotionDecision(0, 0, 0.02), 'promoted', 'no floor: level with the parent');
    assert.equal(promotionDecision(0, 0, 0.02, undefined, 0.5), 'rejected');
    assert.equal(promotionDecision(0.4, null, 0.02, undefined, 0.5), 'rejected', 'no parent AUC');
    assert.equal(promotionDecision(0.49, 0.3, 0.02, { positives: 5, negatives: 5 }, 0.5), 'rejected');
    assert.equal(promotionDecision(0.5, null, 0.02, undefined, 0.5), 'promoted', 'at the floor');
    assert.equal(promotionDecision(NaN, null, 0.02, undefined, 0.5), 'promoted', 'one-class hold-out');
    assert.equal(promotionDecision(0.1, 0.1, 0.02, undefined, 0), 'promoted', 'floor 0 is off');
  });
});

void describe('labeling requests', () => {
  const poolConfig: PoolConfig = {
    maxCandidates: 1000,
    maxBytes: 1e9,
    ttlMs: 1e12,
    leaseMs: 100,
    highWatermark: 0.9,
    lowWatermark: 0.5,
    compareVersions: (a, b) => Number(a.slice(1)) - Number(b.slice(1)),
  };

  function filledPool(n: number) {
    const pool = emptyPool<null>();
    for (let i = 0; i < n; i++) {
      poolReducer(
        pool,
        {
          type: 'candidate-arrived',
          candidate: {
            id: `c${i}`,
            source: { topic: 't', partition: 0, offset: i },
            arrivedAtMs: 0,
            bytes: 1,
            payload: null,
          },
          now: 0,
        },
        poolConfig,
      );
    }
    poolReducer(
      pool,
      {
        type: 'scored',
        scores: Array.from({ length: n }, (_, i) => ({
          id: `c${i}`,
          value: (i * 7) % 13,
          entropy: 0,
          diversity: 0,
          dominantClass: i % 2,
          meanProbs: [0.5, 0.5],
          modelVersion: 'v1',
          scoredAtMs: 0,
        })),
      },
      poolConfig,
    );
    return pool;
  }

  void it('requestId is deterministic and differs by candidate, version and window', () => {
    assert.equal(requestId('c1', 'v1', 3), requestId('c1', 'v1', 3));
    const ids = new Set([
      requestId('c1', 'v1', 3),
      requestId('c2', 'v1', 3),
      requestId('c1', 'v2', 3),
      requestId('c1', 'v1', 4),
    ]);
    assert.equal(ids.size, 4);
  });

  void it('plans requests with why they were made; replaying the plan gives the same requests', () => {
    const pool = filledPool(20);
    const opts = { b: 3, seed: 11, windowSeq: 0, now: 0 };
    const a = planRequests(pool, opts);
    assert.equal(a.requests.length, 3);
    for (const r of a.requests) {
      assert.equal(r.requestId, requestId(r.candidateId, 'v1', 0));
      assert.equal(r.modelVersion, 'v1');
      assert.ok(r.drawProbability > 0 && r.drawProbability <= 1);
      assert.ok(r.rank >= 0 && r.rank < 15);
    }
    assert.deepEqual(planRequests(pool, opts).requests, a.requests);
    const topB = planRequests(pool, { ...opts, randomness: false });
    assert.deepEqual(
      topB.requests.map((r) => r.rank),
      [0, 1, 2],
    );
    assert.deepEqual(
      topB.requests.map((r) => r.takenBy),
      ['rank', 'rank', 'rank'],
    );
    // Issuing the same plan twice asks once.
    const first = poolReducer(pool, a.event, poolConfig).effects;
    const second = poolReducer(pool, a.event, poolConfig).effects;
    assert.deepEqual(
      first.map((e) => e.type),
      ['requested', 'requested', 'requested'],
    );
    assert.deepEqual(
      second.map((e) => (e.type === 'request-refused' ? e.reason : e.type)),
      ['outstanding', 'outstanding', 'outstanding'],
    );
  });

  void it('never requests a candidate twice while outstanding; expired leases return candidates', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            b: fc.integer({ min: 0, max: 6 }),
            dt: fc.integer({ min: 0, max: 150 }),
            answer: fc.nat(),
          }),
          { minLength: 5, maxLength: 30 },
        ),
        fc.integer(),
        (rounds, seed) => {
          const pool = filledPool(12);
          const outstanding = new Map<string, number>(); // candidate -> lease end
          let now = 0;
          rounds.forEach(({ b, dt, answer }, windowSeq) => {
            now += dt;
            const tick = poolReducer(pool, { type: 'tick', now }, poolConfig).effects;
            for (const e of tick) if (e.type === 'lease-expired') outstanding.delete(e.id);
            for (const [id, until] of outstanding) assert.ok(until > now, `${id}: lease not returned`);
            const plan = planRequests(pool, {
              b,
              seed: seed + windowSeq,
              windowSeq,
              now,
            });
            for (const r of plan.requests)
              assert.ok(!outstanding.has(r.candidateId), `${r.candidateId} asked twice`);
            const effects: PoolEffect<null>[] = poolReducer(pool, plan.event, poolConfig).effects;
            for (const e of effects) {
              assert.equal(e.type, 'requested');
              if (e.type === 'requested') outstanding.set(e.id, e.leaseUntilMs);
            }
            // Some answers come back: the candidate leaves the pool.
            const open = [...outstanding.keys()];
            const answered = open[answer % Math.max(1, open.length)];
            if (answered !== undefined && answer % 3 === 0) {
              poolReducer(pool, { type: 'labeled', id: answered }, poolConfig);
              outstanding.delete(answered);
            }
            assert.deepEqual(
              outstandingRequests(pool)
                .map((r) => r.candidateId)
                .sort(),
              [...outstanding.keys()].sort(),
            );
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

void describe('promotion under a noisy hold-out', () => {
  void it('matches Hanley-McNeil on a known case and widens the tolerance on small hold-outs', () => {
    // Hanley & McNeil (1982), eq. 2: AUC 0.8 with 50 positives and 50 negatives -> SE 0.0445.
    assert.ok(Math.abs(aucStandardError(0.8, 50, 50) - 0.0445) < 0.0005);
    assert.ok(Number.isNaN(aucStandardError(0.8, 0, 10)));
    // 0.85 vs 0.975 on 6 positives and 50 negatives: within the noise, promoted.
    assert.equal(promotionDecision(0.85, 0.975, 0.02, { positives: 6, negatives: 50 }), 'promoted');
    assert.equal(promotionDecision(0.85, 0.975, 0.02), 'rejected');
    // On a large hold-out the same drop is real: rejected.
    assert.equal(promotionDecision(0.85, 0.975, 0.02, { positives: 2000, negatives: 2000 }), 'rejected');
  });
});
