import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOracle, isUnsolicited, noisyLabel, OracleOptionsError } from '../../../src/simulate/oracle.js';

const ids = Array.from({ length: 4000 }, (_, i) => `fmnist-${i % 10}-${String(i).padStart(5, '0')}`);

function binaryLabels(): Map<string, number> {
  return new Map(ids.map((id, i) => [id, i % 10 === 6 ? 1 : 0]));
}

describe('oracle radiologist', () => {
  it('answers with the true label when there is no noise, and nothing for unknown candidates', () => {
    const labels = binaryLabels();
    const oracle = createOracle({ labels, numClasses: 2 });
    for (const [id, truth] of labels)
      assert.deepEqual(oracle.answer(id), { label: truth, truth, noisy: false });
    assert.equal(oracle.answer('fmnist-6-99999'), undefined);
    assert.equal(oracle.knows('fmnist-6-99999'), false);
    assert.equal(oracle.knows(ids[0]!), true);
  });

  it('gives a wrong label with probability p, the same one for the same seed, whatever the order', () => {
    const labels = binaryLabels();
    for (const p of [0.1, 0.3]) {
      const a = createOracle({ labels, numClasses: 2, labelNoise: p, seed: 5 });
      const b = createOracle({ labels, numClasses: 2, labelNoise: p, seed: 5 });
      const answers = ids.map((id) => a.answer(id)!);
      const reversed = [...ids].reverse().map((id) => b.answer(id)!);
      assert.deepEqual(answers, reversed.reverse(), 'seeded by candidate, not by call order');
      const wrong = answers.filter((x) => x.noisy).length / answers.length;
      // 4000 draws: the standard deviation of the share is below 0.008.
      assert.ok(Math.abs(wrong - p) < 0.03, `noise ${p}: ${wrong} wrong`);
      for (const x of answers) assert.equal(x.noisy, x.label !== x.truth);
      for (const x of answers) assert.ok(x.label === 0 || x.label === 1);
    }
  });

  it('draws different noise with a different seed', () => {
    const labels = binaryLabels();
    const a = createOracle({ labels, numClasses: 2, labelNoise: 0.5, seed: 1 });
    const b = createOracle({ labels, numClasses: 2, labelNoise: 0.5, seed: 2 });
    assert.notDeepEqual(
      ids.map((id) => a.answer(id)!.label),
      ids.map((id) => b.answer(id)!.label),
    );
  });

  it('with p = 1 is always wrong, uniformly among the other classes when K > 2', () => {
    const labels = new Map(ids.map((id, i) => [id, i % 4]));
    const oracle = createOracle({ labels, numClasses: 4, labelNoise: 1, seed: 3 });
    const given = new Map<string, number>();
    for (const id of ids) {
      const x = oracle.answer(id)!;
      assert.notEqual(x.label, x.truth);
      assert.ok(x.label >= 0 && x.label < 4);
      given.set(`${x.truth}->${x.label}`, (given.get(`${x.truth}->${x.label}`) ?? 0) + 1);
    }
    // 1000 candidates per true class, 3 wrong classes each: about 333 apiece.
    assert.equal(given.size, 12);
    for (const n of given.values()) assert.ok(n > 250 && n < 420, `${n}`);
  });

  it('noisyLabel with p = 0 is the truth', () => {
    assert.deepEqual(noisyLabel(1, 2, 0, 1, 'x'), { label: 1, truth: 1, noisy: false });
  });

  it('refuses options out of their domain with one sentence', () => {
    const labels = binaryLabels();
    assert.throws(() => createOracle({ labels, numClasses: 2, labelNoise: 1.5 }), OracleOptionsError);
    assert.throws(() => createOracle({ labels, numClasses: 1 }), /numClasses must be an integer >= 2/);
    assert.throws(
      () => createOracle({ labels: new Map([['a', 2]]), numClasses: 2 }),
      /not a class index 0\.\.1/,
    );
  });
});

describe('closed-loop CAD share', () => {
  it('labels a deterministic share of candidates unasked', () => {
    const chosen = ids.filter((id) => isUnsolicited(id, 0.25, 1));
    assert.ok(Math.abs(chosen.length / ids.length - 0.25) < 0.03, `${chosen.length}`);
    assert.deepEqual(
      ids.filter((id) => isUnsolicited(id, 0.25, 1)),
      chosen,
    );
    assert.equal(ids.filter((id) => isUnsolicited(id, 0, 1)).length, 0);
    assert.equal(ids.filter((id) => isUnsolicited(id, 1, 1)).length, ids.length);
  });
});
