/**
 * The benchmark's plan: which trajectories to run (strategy x criterion x policy x seed), with
 * trajectories that would behave identically under two policies run once.
 */
import { STRATEGIES, type StrategyCode } from '../core/strategies.js';
import { criterionName, type Criterion, type LoopPolicy } from './policy.js';

export interface BenchJob {
  id: number;
  strategy: StrategyCode;
  criterion: Criterion;
  policyName: string;
  policy: LoopPolicy;
  seed: number;
}

/** The knobs of a policy that change what `strategy` does (the rest are ignored by it). */
function effectivePolicy(strategy: StrategyCode, p: LoopPolicy): Partial<LoopPolicy> {
  const s = STRATEGIES[strategy];
  const base: Partial<LoopPolicy> = { classBalanced: p.classBalanced };
  if (s.selection === 'active') {
    base.randomWarmupSteps = p.randomWarmupSteps;
    base.interDiversity = p.interDiversity ?? 0;
  }
  if (s.continual) {
    base.continualLrFactor = p.continualLrFactor;
    base.coldStartFullLr = p.coldStartFullLr;
    base.replayPerClass = p.replayPerClass;
  }
  return base;
}

/** Lists the jobs; random selection (RFT) ignores the criterion, so it runs once per seed. */
export function planJobs(
  strategies: readonly StrategyCode[],
  criteria: readonly Criterion[],
  policies: readonly { name: string; policy: LoopPolicy }[],
  seeds: readonly number[],
): BenchJob[] {
  const jobs: BenchJob[] = [];
  const seen = new Set<string>();
  for (const seed of seeds) {
    for (const { name, policy } of policies) {
      for (const strategy of strategies) {
        const crits = STRATEGIES[strategy].selection === 'random' ? criteria.slice(0, 1) : criteria;
        for (const criterion of crits) {
          const key = JSON.stringify([
            seed,
            strategy,
            STRATEGIES[strategy].selection === 'random' ? '' : criterionName(criterion),
            effectivePolicy(strategy, policy),
          ]);
          if (seen.has(key)) continue;
          seen.add(key);
          jobs.push({ id: jobs.length, strategy, criterion, policyName: name, policy, seed });
        }
      }
    }
  }
  return jobs;
}
