/** The scoring service's options from the daemon's configuration. */
import type { Config } from '../config/index.js';
import { coreCount, type ScoringServiceOptions } from '../workers/scoring-service.js';

/** Worker threads for `scoring.workers`: 'auto' is one per core Node may use. */
export function scoringWorkerCount(workers: Config['scoring']['workers'], cores = coreCount()): number {
  return workers === 'auto' ? Math.max(1, cores) : workers;
}

/**
 * One worker per core by default; models cut at the fine-tuning depth, with the feature cache
 * bounded by `scoring.featureCacheMaxBytes` (off when every layer is fine-tuned: nothing to cache).
 */
export function scoringServiceOptions(config: Config): ScoringServiceOptions {
  return {
    backend: config.backend,
    workers: scoringWorkerCount(config.scoring.workers),
    cutDepth: config.training.fineTuneDepth,
    featureCacheMaxBytes: config.scoring.featureCacheMaxBytes,
    nice: config.scoring.nice,
  };
}
