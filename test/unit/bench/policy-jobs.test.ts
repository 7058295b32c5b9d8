import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { criterionName, criterionScoreOptions, parseCriterion, POLICIES } from '../../../src/bench/policy.js';
import { planJobs } from '../../../src/bench/jobs.js';

describe('criteria', () => {
  it('parses and names the eight criteria of Table 4', () => {
    for (const measure of ['entropy', 'diversity'] as const) {
      for (const majority of [true, false]) {
        for (const randomness of [true, false]) {
          const c = { measure, majority, randomness };
          assert.deepEqual(parseCriterion(criterionName(c)), c);
        }
      }
    }
    assert.deepEqual(parseCriterion('Diversity + random'), {
      measure: 'diversity',
      majority: false,
      randomness: true,
    });
    assert.throws(() => parseCriterion('margin'), /entropy' or 'diversity/);
    assert.throws(() => parseCriterion('entropy+often'), /unknown part/);
  });

  it('switches one measure on at a time', () => {
    assert.deepEqual(criterionScoreOptions(parseCriterion('diversity+majority'), 0.25), {
      alpha: 0.25,
      majority: true,
      lambdaEntropy: 0,
      lambdaDiversity: 1,
    });
  });
});

describe('job planning', () => {
  const crit = [parseCriterion('entropy+majority+random'), parseCriterion('diversity+random')];
  it('runs random selection once per seed, active strategies per criterion', () => {
    const jobs = planJobs(
      ['RFT(LQ)', 'ACFT(HQ)'],
      crit,
      [{ name: 'paper', policy: POLICIES.paper! }],
      [1, 2],
    );
    assert.equal(jobs.filter((j) => j.strategy === 'RFT(LQ)').length, 2);
    assert.equal(jobs.filter((j) => j.strategy === 'ACFT(HQ)').length, 4);
    assert.deepEqual(
      jobs.map((j) => j.id),
      jobs.map((_, i) => i),
    );
  });

  it('does not rerun a strategy under a policy that changes nothing it does', () => {
    const policies = [
      { name: 'paper', policy: POLICIES.paper! },
      { name: 'replay', policy: POLICIES.replay! },
    ];
    const jobs = planJobs(['RFT(LQ)', 'AFT(LQ)', 'ACFT(HQ)'], crit.slice(0, 1), policies, [1]);
    assert.equal(jobs.filter((j) => j.strategy === 'RFT(LQ)').length, 1);
    assert.equal(jobs.filter((j) => j.strategy === 'AFT(LQ)').length, 1);
    assert.equal(jobs.filter((j) => j.strategy === 'ACFT(HQ)').length, 2);
  });

  it('runs each inter-diversity strength of an active strategy, and random selection once', () => {
    const policies = ['default', 'inter-1', 'inter-4'].map((name) => ({ name, policy: POLICIES[name]! }));
    const jobs = planJobs(['RFT(LQ)', 'AFT(LQ)', 'ACFT(HQ)'], crit.slice(0, 1), policies, [1]);
    assert.equal(jobs.filter((j) => j.strategy === 'RFT(LQ)').length, 1);
    assert.deepEqual(
      jobs.filter((j) => j.strategy === 'ACFT(HQ)').map((j) => j.policyName),
      ['default', 'inter-1', 'inter-4'],
    );
    assert.equal(jobs.filter((j) => j.strategy === 'AFT(LQ)').length, 3);
  });
});
