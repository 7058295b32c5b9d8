import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  misclassified,
  parseStrategy,
  STRATEGIES,
  STRATEGY_CODES,
  trainingSet,
  UnknownStrategyError,
  type StrategyCode,
} from '../../../src/core/strategies.js';

void describe('STRATEGIES', () => {
  void it("encodes the paper's Table 2", () => {
    const table: Record<StrategyCode, [string, string, string]> = {
      'RFT(LQ)': ['M0', 'LQ', 'random'],
      'AFT(LQ)': ['M0', 'LQ', 'active'],
      'ACFT(Q)': ['previous', 'Q', 'active'],
      'ACFT(LQ)': ['previous', 'LQ', 'active'],
      'ACFT(HQ)': ['previous', 'HQ', 'active'],
    };
    assert.deepEqual(Object.keys(STRATEGIES), [...STRATEGY_CODES]);
    for (const code of STRATEGY_CODES) {
      const s = STRATEGIES[code];
      assert.equal(s.code, code);
      assert.deepEqual([s.startFrom, s.trainOn, s.selection], table[code]);
      assert.equal(s.continual, s.startFrom === 'previous');
      assert.ok(s.description.length > 0);
    }
  });
});

void describe('parseStrategy', () => {
  void it('accepts the paper codes and loose spellings, case-insensitively', () => {
    const cases: [string, StrategyCode][] = [
      ['ACFT(HQ)', 'ACFT(HQ)'],
      ['acft-hq', 'ACFT(HQ)'],
      ['acft_hq', 'ACFT(HQ)'],
      ['ACFT (HQ)', 'ACFT(HQ)'],
      ['acft', 'ACFT(HQ)'],
      ['acft(q)', 'ACFT(Q)'],
      ['Acft-LQ', 'ACFT(LQ)'],
      ['rft', 'RFT(LQ)'],
      ['RFT(LQ)', 'RFT(LQ)'],
      ['aft-lq', 'AFT(LQ)'],
      ['aft', 'AFT(LQ)'],
    ];
    for (const [input, code] of cases) assert.equal(parseStrategy(input).code, code, input);
  });

  void it('refuses unknown names', () => {
    for (const name of ['', 'acft-xq', 'rft-hq', 'random']) {
      assert.throws(
        () => parseStrategy(name),
        (e: unknown) => e instanceof UnknownStrategyError && e.code === 'UNKNOWN_STRATEGY',
      );
    }
  });
});

void describe('trainingSet', () => {
  const labeled = ['l1', 'l2', 'l3'];
  const newlyLabeled = ['q1', 'q2'];
  const hard = ['l2'];
  const parts = { labeled, newlyLabeled, misclassified: hard };

  void it('trains on L u Q, Q, or H u Q by strategy', () => {
    assert.deepEqual(trainingSet('RFT(LQ)', parts), ['l1', 'l2', 'l3', 'q1', 'q2']);
    assert.deepEqual(trainingSet('AFT(LQ)', parts), ['l1', 'l2', 'l3', 'q1', 'q2']);
    assert.deepEqual(trainingSet('ACFT(Q)', parts), ['q1', 'q2']);
    assert.deepEqual(trainingSet(STRATEGIES['ACFT(LQ)'], parts), ['l1', 'l2', 'l3', 'q1', 'q2']);
    assert.deepEqual(trainingSet(parseStrategy('acft'), parts), ['l2', 'q1', 'q2']);
  });

  void it('trains on an item once even when it is in two parts', () => {
    const a = { id: 'a' };
    const aAgain = { id: 'a' };
    const b = { id: 'b' };
    assert.deepEqual(trainingSet('ACFT(LQ)', { labeled: [a, b], newlyLabeled: [a], misclassified: [] }), [
      a,
      b,
    ]);
    assert.deepEqual(
      trainingSet('ACFT(HQ)', { labeled: [], newlyLabeled: [aAgain, b], misclassified: [a] }, (c) => c.id),
      [a, b],
    );
  });
});

void describe('misclassified', () => {
  void it('keeps the items whose prediction differs from their label', () => {
    const items = [
      { id: 1, label: 0, predicted: 0 },
      { id: 2, label: 1, predicted: 0 },
      { id: 3, label: 2, predicted: 2 },
      { id: 4, label: 2, predicted: 1 },
    ];
    assert.deepEqual(
      misclassified(
        items,
        (i) => i.predicted,
        (i) => i.label,
      ).map((i) => i.id),
      [2, 4],
    );
    assert.deepEqual(
      misclassified(
        [],
        () => 0,
        () => 1,
      ),
      [],
    );
  });
});
