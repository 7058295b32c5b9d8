import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { learningCurveSvg, markdownTable, summarize } from '../../../src/bench/report.js';
import type { TrajectoryResult } from '../../../src/bench/trajectory.js';

function result(strategy: TrajectoryResult['strategy'], seed: number, aucs: number[]): TrajectoryResult {
  const curve = aucs.map((auc, i) => ({ labels: i * 10, auc }));
  return {
    strategy,
    criterion: strategy === 'RFT(LQ)' ? 'random' : 'entropy+majority+random',
    policy: 'paper',
    seed,
    evaluationSplit: 'test',
    curve,
    steps: curve.slice(1).map((p, i) => ({
      step: i + 1,
      labels: p.labels,
      auc: p.auc,
      fineTuneSeconds: 1,
      scoreSeconds: strategy === 'RFT(LQ)' ? 0 : 2,
      patchesScored: strategy === 'RFT(LQ)' ? 0 : 1000,
      q: 10,
      h: 0,
      replayed: 0,
      trainCandidates: 10,
      classCountsInQ: strategy === 'RFT(LQ)' ? [9, 1] : [6, 4],
      selection: strategy === 'RFT(LQ)' ? 'random' : 'active',
    })),
    alc: 0,
    finalAuc: curve.at(-1)!.auc,
    seconds: 1,
  };
}

describe('benchmark report', () => {
  const results = [
    result('RFT(LQ)', 1, [0.5, 0.6, 0.7, 0.8, 0.9]),
    result('RFT(LQ)', 2, [0.5, 0.6, 0.7, 0.8, 0.8]),
    result('ACFT(HQ)', 1, [0.5, 0.8, 0.9, 0.9, 0.9]),
    result('ACFT(HQ)', 2, [0.5, 0.8, 0.85, 0.9, 0.9]),
  ];
  const groups = summarize(results);

  it('gives mean and s.d. per group, labels to reach random final AUC, and the saving', () => {
    const rft = groups.find((g) => g.strategy === 'RFT(LQ)')!;
    const acft = groups.find((g) => g.strategy === 'ACFT(HQ)')!;
    assert.ok(Math.abs(rft.finalAuc.mean - 0.85) < 1e-12);
    assert.ok(Math.abs(rft.finalAuc.sd - Math.sqrt(0.005)) < 1e-12);
    // Random's mean final AUC is 0.85: random reaches it at 40 labels, ACFT(HQ) at 20.
    assert.equal(rft.labelsToReachRandomFinal, 40);
    assert.equal(acft.labelsToReachRandomFinal, 20);
    assert.ok(Math.abs(acft.annotationSavingVsRandom! - 0.5) < 1e-12);
    assert.deepEqual(acft.classShareOfRequests, [0.6, 0.4]);
    assert.equal(acft.patchesPerSecond, 500);
    assert.equal(rft.patchesPerSecond, null);
  });

  it('renders a markdown table and a well-formed SVG with one line per group', () => {
    const md = markdownTable(groups, 'toy');
    assert.match(md, /\| ACFT\(HQ\) \| entropy\+majority\+random \| 1,2 \|/);
    assert.match(md, /50\.0%/);
    const svg = learningCurveSvg(groups, 'toy <task>');
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.equal((svg.match(/<polygon/g) ?? []).length, 1, 'one s.d. band, for random');
    assert.match(svg, /toy &lt;task&gt;/);
    assert.ok(svg.startsWith('<svg') && svg.trim().endsWith('</svg>'));
  });
});
