import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  emptyLabels,
  freshIds,
  getLabeled,
  holdoutCandidates,
  ingestCandidate,
  ingestFeedback,
  isLabeled,
  labelsReducer,
  newLabelsSinceWindow,
  pendingCount,
  resolveLabel,
  resumePendingClock,
  trainableCandidates,
  trainingExamples,
  type Feedback,
  type LabelingConfig,
  type LabelingEffect,
  type LabelingState,
  type LabelsEffect,
  type WindowPlan,
} from '../../../src/core/labels.js';
import {
  emptyPool,
  getCandidate,
  hasCandidate,
  poolCandidates,
  type NewCandidate,
} from '../../../src/core/pool.js';
import { isHeldOut } from '../../../src/core/holdout.js';

const config: LabelingConfig = {
  pool: {
    maxCandidates: 100,
    maxBytes: 1e9,
    ttlMs: 1e12,
    leaseMs: 1000,
    highWatermark: 0.9,
    lowWatermark: 0.5,
    compareVersions: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
  },
  labels: { holdoutShare: 0, maxPending: 10, pendingTtlMs: 1000 },
};

function cand(id: string): NewCandidate<string> {
  return {
    id,
    source: { topic: 'candidates', partition: 0, offset: 0 },
    arrivedAtMs: 0,
    bytes: 1,
    payload: `img-${id}`,
  };
}

function fb(
  candidateId: string,
  label: number,
  annotatorId = 'r1',
  timeMs = 0,
  requestId?: string,
): Feedback {
  return { candidateId, label, annotatorId, timeMs, ...(requestId !== undefined ? { requestId } : {}) };
}

function fresh(): LabelingState<string> {
  return { pool: emptyPool<string>(), labels: emptyLabels<string>() };
}

/** Feeds messages in order; returns the effects. */
function feed(
  s: LabelingState<string>,
  messages: ({ candidate: string } | { feedback: Feedback })[],
  now = 0,
  cfg: LabelingConfig = config,
): LabelingEffect<string>[] {
  const effects: LabelingEffect<string>[] = [];
  for (const m of messages) {
    const step =
      'candidate' in m
        ? ingestCandidate(s, cand(m.candidate), now, cfg)
        : ingestFeedback(s, m.feedback, now, cfg);
    effects.push(...step.effects);
  }
  return effects;
}

const types = (effects: LabelingEffect<unknown>[]) => effects.map((e) => e.type);

void describe('feedback for a pooled candidate', () => {
  void it('takes the candidate out of the pool into L, with its payload, counted once', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }]);
    const effects = feed(s, [{ feedback: fb('a', 1, 'r1', 5, 'req-1') }], 10);
    assert.deepEqual(types(effects), ['labeled', 'first-label']);
    assert.deepEqual(effects[1], {
      type: 'first-label',
      candidateId: 'a',
      label: 1,
      heldOut: false,
      annotatorId: 'r1',
      requestId: 'req-1',
    });
    assert.equal(hasCandidate(s.pool, 'a'), false);
    assert.equal(getLabeled(s.labels, 'a')?.payload, 'img-a');
    assert.equal(getLabeled(s.labels, 'a')?.firstLabeledAtMs, 10);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
    assert.deepEqual(trainingExamples(s.labels, ['a']), [{ id: 'a', label: 1, payload: 'img-a' }]);
  });

  void it('treats the same annotator and label again as a no-op, however often it is replayed', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1) }]);
    const again = feed(s, [
      { feedback: fb('a', 1) },
      { feedback: fb('a', 1, 'r1', 99) },
      { feedback: fb('a', 1) },
    ]);
    assert.deepEqual(types(again), ['duplicate-feedback', 'duplicate-feedback', 'duplicate-feedback']);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
    assert.equal(getLabeled(s.labels, 'a')?.votes.length, 1);
  });

  void it('lets the same annotator relabel, and ignores their older feedback after that', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1, 'r1', 10) }]);
    const e = feed(s, [
      { feedback: fb('a', 0, 'r1', 20) }, // relabel
      { feedback: fb('a', 1, 'r1', 10) }, // the old one, redelivered: stale
      { feedback: fb('a', 1, 'r1', 15) }, // sent before the relabel, arriving late: stale
    ]);
    assert.deepEqual(types(e), ['label-changed', 'stale-feedback', 'stale-feedback']);
    assert.deepEqual(e[0], {
      type: 'label-changed',
      candidateId: 'a',
      from: 1,
      to: 0,
      trained: false,
      heldOut: false,
    });
    assert.equal(getLabeled(s.labels, 'a')?.label, 0);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
  });

  void it('a re-confirmation moves the annotator’s stale horizon without changing anything else', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1, 'r1', 10) }, { feedback: fb('a', 1, 'r1', 50) }]);
    assert.deepEqual(types(feed(s, [{ feedback: fb('a', 0, 'r1', 30) }])), ['stale-feedback']);
    assert.equal(getLabeled(s.labels, 'a')?.label, 1);
  });

  void it('takes the majority over annotators, ties going to the most recent vote', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1, 'r1', 10) }]);
    // 1 vs 0, tie: the most recent vote (r2 at 20) wins.
    assert.deepEqual(types(feed(s, [{ feedback: fb('a', 0, 'r2', 20) }])), ['label-changed']);
    assert.equal(getLabeled(s.labels, 'a')?.label, 0);
    // 2 votes for 1 against 1 for 0: majority, though r3's vote is older.
    assert.deepEqual(types(feed(s, [{ feedback: fb('a', 1, 'r3', 5) }])), ['label-changed']);
    assert.equal(getLabeled(s.labels, 'a')?.label, 1);
    // A confirmation that changes nothing.
    assert.deepEqual(types(feed(s, [{ feedback: fb('a', 1, 'r4', 1) }])), ['label-confirmed']);
  });

  void it('resolveLabel: majority, then the most recent, then reception order', () => {
    const v = (label: number, timeMs: number, seq: number) => ({
      annotatorId: `x${seq}`,
      label,
      timeMs,
      seq,
      latestMs: timeMs,
    });
    assert.equal(resolveLabel([v(1, 0, 0), v(2, 1, 1), v(2, 0, 2)]), 2);
    assert.equal(resolveLabel([v(1, 5, 0), v(2, 1, 1)]), 1);
    assert.equal(resolveLabel([v(1, 5, 0), v(2, 5, 1)]), 2);
    assert.equal(resolveLabel([]), undefined);
  });
});

function plan(over: Partial<WindowPlan> & Pick<WindowPlan, 'q' | 'train' | 'trainLabels'>): WindowPlan {
  return { seq: 0, strategy: 'ACFT(HQ)', startFrom: 'previous', h: [], corrected: [], replay: [], ...over };
}

void describe('windows in the label store', () => {
  void it('a completed window consumes its Q; labels arriving meanwhile count for the next', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { candidate: 'b' }, { feedback: fb('a', 1) }, { feedback: fb('b', 0) }]);
    assert.deepEqual(freshIds(s.labels), ['a', 'b']);
    const w = plan({ q: ['a', 'b'], train: ['a', 'b'], trainLabels: [1, 0] });
    assert.deepEqual(
      labelsReducer(s.labels, { type: 'window-started', plan: w, now: 1 }, config.labels).effects,
      [{ type: 'window-started', seq: 0 }],
    );
    assert.equal(newLabelsSinceWindow(s.labels), 0);
    feed(s, [{ candidate: 'c' }, { feedback: fb('c', 1) }]);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
    // A second start while one is in flight is refused.
    assert.deepEqual(
      labelsReducer(s.labels, { type: 'window-started', plan: { ...w, seq: 1 }, now: 1 }, config.labels)
        .effects,
      [{ type: 'window-ignored', seq: 1, reason: 'in-flight' }],
    );
    const done = labelsReducer(s.labels, { type: 'window-completed', seq: 0, now: 50 }, config.labels);
    assert.deepEqual(done.effects, [{ type: 'window-completed', seq: 0, consumed: 2, trained: 2 }]);
    assert.equal(s.labels.windowSeq, 1);
    assert.equal(s.labels.lastWindowAtMs, 50);
    assert.deepEqual(freshIds(s.labels), ['c']);
    assert.equal(getLabeled(s.labels, 'a')?.trainedLabel, 1);
    assert.equal(getLabeled(s.labels, 'a')?.consumedByWindow, 0);
    // Completing again (a replay) is ignored.
    assert.deepEqual(
      labelsReducer(s.labels, { type: 'window-completed', seq: 0, now: 60 }, config.labels).effects,
      [{ type: 'window-ignored', seq: 0, reason: 'not-in-flight' }],
    );
  });

  void it('records a label change of a trained candidate', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1, 'r1', 1) }]);
    labelsReducer(
      s.labels,
      { type: 'window-started', plan: plan({ q: ['a'], train: ['a'], trainLabels: [1] }), now: 1 },
      config.labels,
    );
    labelsReducer(s.labels, { type: 'window-completed', seq: 0, now: 2 }, config.labels);
    const e = feed(s, [{ feedback: fb('a', 0, 'r1', 9) }]);
    assert.deepEqual(e, [
      { type: 'label-changed', candidateId: 'a', from: 1, to: 0, trained: true, heldOut: false },
    ]);
    // Not a new label: it is not counted again.
    assert.equal(newLabelsSinceWindow(s.labels), 0);
    assert.deepEqual(trainingExamples(s.labels, ['a']), [{ id: 'a', label: 0, payload: 'img-a' }]);
  });

  void it('an abandoned window is planned again', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1) }]);
    labelsReducer(
      s.labels,
      { type: 'window-started', plan: plan({ q: ['a'], train: ['a'], trainLabels: [1] }), now: 1 },
      config.labels,
    );
    assert.equal(newLabelsSinceWindow(s.labels), 0);
    labelsReducer(s.labels, { type: 'window-abandoned', seq: 0 }, config.labels);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
    assert.equal(s.labels.windowSeq, 0);
  });
});

void describe('hold-out', () => {
  void it('holds out by hash of the id, decided once, never trained on nor counted', () => {
    const cfg = { ...config, labels: { ...config.labels, holdoutShare: 0.5, holdoutSalt: 'x' } };
    const s = fresh();
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    for (const id of ids) feed(s, [{ candidate: id }, { feedback: fb(id, 1) }], 0, cfg);
    const held = ids.filter((id) => isHeldOut(id, 0.5, 'x'));
    assert.ok(held.length > 5 && held.length < 35);
    assert.deepEqual(
      holdoutCandidates(s.labels).map((r) => r.id),
      held,
    );
    assert.equal(newLabelsSinceWindow(s.labels), ids.length - held.length);
    assert.deepEqual(trainingExamples(s.labels, held), []);
    assert.ok(trainableCandidates(s.labels).every((r) => !held.includes(r.id)));
    // Decided once: a later change of the share does not move labeled candidates.
    const cfgAll = { ...cfg, labels: { ...cfg.labels, holdoutShare: 1 } };
    feed(s, [{ feedback: fb('c0', 0, 'r2', 5) }], 0, cfgAll);
    assert.equal(getLabeled(s.labels, 'c0')?.heldOut, isHeldOut('c0', 0.5, 'x'));
  });
});

void describe('feedback before its candidate', () => {
  void it('waits, then is applied when the candidate arrives: the candidate goes to L, not the pool', () => {
    const s = fresh();
    const e1 = feed(s, [
      { feedback: fb('a', 1, 'r1', 1) },
      { feedback: fb('a', 0, 'r2', 2) },
      { feedback: fb('a', 0, 'r2', 2) },
    ]);
    assert.deepEqual(types(e1), ['feedback-pending', 'feedback-pending', 'duplicate-feedback']);
    assert.equal(pendingCount(s.labels), 2);
    const e2 = feed(s, [{ candidate: 'a' }], 500);
    assert.deepEqual(types(e2), ['first-label', 'label-changed', 'pending-applied']);
    assert.equal(hasCandidate(s.pool, 'a'), false);
    assert.equal(getLabeled(s.labels, 'a')?.label, 0);
    assert.equal(pendingCount(s.labels), 0);
    assert.equal(newLabelsSinceWindow(s.labels), 1);
  });

  void it('is dead-lettered as unknown-candidate when its TTL passes', () => {
    const s = fresh();
    feed(s, [{ feedback: fb('ghost', 1) }], 100);
    assert.deepEqual(labelsReducer(s.labels, { type: 'tick', now: 1099 }, config.labels).effects, []);
    const e = labelsReducer(s.labels, { type: 'tick', now: 1100 }, config.labels).effects;
    assert.deepEqual(e, [
      {
        type: 'dead-letter',
        reason: 'unknown-candidate',
        cause: 'ttl-expired',
        feedback: fb('ghost', 1),
        receivedAtMs: 100,
      },
    ]);
    // The candidate arriving later is an ordinary unlabeled candidate.
    assert.deepEqual(types(feed(s, [{ candidate: 'ghost' }], 2000)), ['admitted']);
    assert.equal(isLabeled(s.labels, 'ghost'), false);
  });

  void it('waits its full time again after a restart (resumePendingClock): downtime does not count', () => {
    const s = fresh();
    feed(s, [{ feedback: fb('late', 1) }], 100);
    // The daemon was down from 500 to 5000; consumption resumes at 5000.
    resumePendingClock(s.labels, 5000);
    assert.deepEqual(labelsReducer(s.labels, { type: 'tick', now: 5999 }, config.labels).effects, []);
    assert.deepEqual(types(feed(s, [{ candidate: 'late' }], 5500)), ['first-label', 'pending-applied']);
    assert.equal(getLabeled(s.labels, 'late')?.label, 1);
  });

  void it('is bounded: when full, the oldest waiting feedback is dead-lettered', () => {
    const cfg = { ...config, labels: { ...config.labels, maxPending: 2 } };
    const s = fresh();
    const e = feed(s, [{ feedback: fb('x', 1) }, { feedback: fb('y', 1) }, { feedback: fb('z', 1) }], 0, cfg);
    assert.deepEqual(types(e), ['feedback-pending', 'feedback-pending', 'dead-letter', 'feedback-pending']);
    assert.equal((e[2] as Extract<LabelsEffect, { type: 'dead-letter' }>).feedback.candidateId, 'x');
    assert.equal((e[2] as Extract<LabelsEffect, { type: 'dead-letter' }>).cause, 'buffer-full');
    assert.equal(pendingCount(s.labels), 2);
  });

  void it('a replayed candidate that is labeled already stays out of the pool', () => {
    const s = fresh();
    feed(s, [{ candidate: 'a' }, { feedback: fb('a', 1) }]);
    assert.deepEqual(feed(s, [{ candidate: 'a' }]), [{ type: 'already-labeled', candidateId: 'a' }]);
    assert.equal(getCandidate(s.pool, 'a'), undefined);
  });
});

void describe('label store properties', () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const messageArb = fc.oneof(
    fc.record({ kind: fc.constant('candidate' as const), id: fc.constantFrom(...ids) }),
    fc.record({
      kind: fc.constant('feedback' as const),
      id: fc.constantFrom(...ids),
      label: fc.integer({ min: 0, max: 2 }),
      annotator: fc.constantFrom('r1', 'r2', 'r3'),
    }),
    fc.record({ kind: fc.constant('tick' as const) }),
  );
  const runArb = fc.record({
    messages: fc.array(fc.record({ m: messageArb, dt: fc.integer({ min: 0, max: 400 }) }), {
      minLength: 10,
      maxLength: 60,
    }),
    share: fc.constantFrom(0, 0.3, 1),
  });

  type Msg = { candidate: string } | { feedback: Feedback } | { tick: true };

  type RawMessage =
    | { kind: 'candidate'; id: string }
    | { kind: 'feedback'; id: string; label: number; annotator: string }
    | { kind: 'tick' };

  /** Feedback times are unique, so each annotator's latest label is well defined. */
  function toMessages(messages: readonly { m: RawMessage }[]): Msg[] {
    return messages.map(({ m }, i): Msg => {
      if (m.kind === 'candidate') return { candidate: m.id };
      if (m.kind === 'feedback') return { feedback: fb(m.id, m.label, m.annotator, 1000 + i) };
      return { tick: true };
    });
  }

  function play(s: LabelingState<string>, msgs: Msg[], times: number[], cfg: LabelingConfig) {
    const effects: LabelingEffect<string>[] = [];
    msgs.forEach((m, i) => {
      const now = times[i] as number;
      if ('tick' in m) effects.push(...labelsReducer(s.labels, { type: 'tick', now }, cfg.labels).effects);
      else if ('candidate' in m) effects.push(...ingestCandidate(s, cand(m.candidate), now, cfg).effects);
      else effects.push(...ingestFeedback(s, m.feedback, now, cfg).effects);
      for (const e of effects) {
        if (e.type === 'dead-letter' && e.cause === 'ttl-expired') {
          assert.ok(e.receivedAtMs + cfg.labels.pendingTtlMs <= now, 'dead-lettered before its TTL');
        }
      }
      for (const c of poolCandidates(s.pool))
        assert.ok(!isLabeled(s.labels, c.id), `${c.id} both pooled and labeled`);
    });
    return effects;
  }

  void it('no candidate is both pooled and labeled; labels are counted once however often replayed', () => {
    fc.assert(
      fc.property(runArb, fc.array(fc.nat(), { maxLength: 30 }), ({ messages, share }, dupPicks) => {
        const cfg = { ...config, labels: { ...config.labels, holdoutShare: share, maxPending: 4 } };
        const s = fresh();
        const msgs = toMessages(messages);
        let t = 0;
        const times = messages.map(({ dt }) => (t += dt));
        const effects = play(s, msgs, times, cfg);
        const firsts = effects.filter((e) => e.type === 'first-label');
        const labeledIds = ids.filter((id) => isLabeled(s.labels, id));
        assert.equal(firsts.length, labeledIds.length);
        const trainable = labeledIds.filter((id) => !getLabeled(s.labels, id)?.heldOut);
        assert.equal(newLabelsSinceWindow(s.labels), trainable.length);
        if (share === 0) assert.equal(trainable.length, labeledIds.length);
        if (share === 1) assert.equal(trainable.length, 0);

        // Replay: everything again, plus random duplicates of earlier messages, later in time.
        const labelsBefore = new Map(labeledIds.map((id) => [id, getLabeled(s.labels, id)?.label]));
        const isLabeledBefore = (id: string): boolean => labeledIds.includes(id);
        const extra = dupPicks.map((k) => msgs[k % msgs.length] as Msg);
        const replay = [...msgs, ...extra];
        const replayTimes = replay.map(() => t);
        const replayEffects = play(s, replay, replayTimes, cfg);
        assert.equal(
          replayEffects.filter((e) => e.type === 'first-label' && isLabeledBefore(e.candidateId)).length,
          0,
        );
        // Feedback that was dead-lettered the first time is news to the store when replayed.
        const lost = new Set(
          effects.flatMap((e) => (e.type === 'dead-letter' ? [e.feedback.candidateId] : [])),
        );
        for (const id of lost) labelsBefore.delete(id);
        for (const e of replayEffects) {
          if ('candidateId' in e && labelsBefore.has(e.candidateId)) {
            assert.ok(
              ['duplicate-feedback', 'stale-feedback', 'already-labeled'].includes(e.type),
              `replay changed ${e.candidateId}: ${e.type}`,
            );
          }
        }
        for (const [id, label] of labelsBefore) assert.equal(getLabeled(s.labels, id)?.label, label);
        const labeledAfter = ids.filter(
          (id) => isLabeled(s.labels, id) && !getLabeled(s.labels, id)?.heldOut,
        );
        assert.equal(newLabelsSinceWindow(s.labels), labeledAfter.length);
      }),
      { numRuns: 300 },
    );
  });

  void it('waiting feedback is applied when its candidate arrives or dead-lettered after its TTL', () => {
    fc.assert(
      fc.property(runArb, ({ messages }) => {
        const cfg = { ...config, labels: { ...config.labels, maxPending: 1000 } };
        const s = fresh();
        const msgs = toMessages(messages);
        let t = 0;
        const times = messages.map(({ dt }) => (t += dt));
        const effects = play(s, msgs, times, cfg);
        effects.push(
          ...labelsReducer(s.labels, { type: 'tick', now: t + cfg.labels.pendingTtlMs }, cfg.labels).effects,
        );
        assert.equal(pendingCount(s.labels), 0);
        // Every feedback that waited was either applied or dead-lettered, once.
        const waited = effects.filter((e) => e.type === 'feedback-pending').length;
        const applied = effects
          .filter((e) => e.type === 'pending-applied')
          .reduce((n, e) => n + (e.type === 'pending-applied' ? e.count : 0), 0);
        const dead = effects.filter((e) => e.type === 'dead-letter');
        assert.equal(applied + dead.length, waited);
        for (const d of dead) {
          assert.ok(
            d.type === 'dead-letter' && d.reason === 'unknown-candidate' && d.cause === 'ttl-expired',
          );
        }
      }),
      { numRuns: 300 },
    );
  });
});
