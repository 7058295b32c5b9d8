/**
 * The scoring stages: new candidates in micro-batches (`bufferTime`, then merged while the scorer
 * is busy), the rescore of the pool one chunk at a time (`switchMap`: a newer version's first
 * chunk interrupts an older chain), and H's predictions for a window (`concatMap`). Each batch is
 * split by patch recipe, and a candidate that makes its batch fail is isolated and reported.
 */
import { bufferTime, concatMap, filter, mergeMap, switchMap, type OperatorFunction } from 'rxjs';
import { augmentationSpecOf, scoreOptionsOf, type Config } from '../../config/index.js';
import type { ScoreBatchResult } from '../../workers/scoring-service.js';
import { isolatePoison } from '../isolate-poison.js';
import type { Effect, Input, Poisoned, ScoreEntry, ScorePurpose } from '../loop/io.js';
import type { Clock, ScorerPort } from '../ports.js';
import { mergeWhileBusy } from '../rx-operators.js';
import { recipeKey, scoringInput } from '../stored-candidate.js';

/** Most candidates merged into one scoring call when micro-batches queue up behind a busy scorer. */
const MAX_SCORING_BATCH = 512;

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

/** Scores new candidates in micro-batches: `scored` (or `scoring-failed`) per call. */
export function scoreNew(
  scorer: ScorerPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'score'>, Input> {
  return (effects) =>
    effects.pipe(
      mergeMap((e) => e.entries),
      bufferTime(config.scoring.microBatchMaxWaitMs, null, config.scoring.microBatchSize, clock.scheduler),
      filter((batch) => batch.length > 0),
      mergeWhileBusy((batch) => scoreInput(scorer, config, clock, batch, { kind: 'new' }), MAX_SCORING_BATCH),
    );
}

/** Rescores one chunk at a time; a newer chunk (a newer version) interrupts the one in flight. */
export function rescore(
  scorer: ScorerPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'rescore'>, Input> {
  return (effects) =>
    effects.pipe(
      switchMap((e) =>
        scoreInput(scorer, config, clock, e.entries, { kind: 'rescore', generation: e.generation }),
      ),
    );
}

/** Predicts the classes of L for a window's H, one window at a time. */
export function scoreWindow(
  scorer: ScorerPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'score-window'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap((e) =>
        scoreInput(scorer, config, clock, e.entries, { kind: 'window', generation: e.generation }),
      ),
    );
}

async function scoreInput(
  scorer: ScorerPort,
  config: Config,
  clock: Clock,
  entries: readonly ScoreEntry[],
  purpose: ScorePurpose,
): Promise<Input> {
  try {
    const { results, poisoned } = await scoreEntries(scorer, config, entries);
    return { type: 'scored', purpose, results, poisoned, now: clock.now() };
  } catch (error) {
    return { type: 'scoring-failed', purpose, error, now: clock.now() };
  }
}

/**
 * Scores stored candidates with the served model, one call per patch recipe (image candidates
 * with the configured or their own augmentation, patch candidates as they came); a candidate that
 * poisons its batch is isolated (`shape-mismatch` when the model refused its patches' shape).
 */
export async function scoreEntries(
  scorer: ScorerPort,
  config: Config,
  entries: readonly ScoreEntry[],
): Promise<{ results: ScoreBatchResult[]; poisoned: Poisoned[] }> {
  const groups = new Map<string, ScoreEntry[]>();
  for (const entry of entries) {
    const key = recipeKey(entry.stored);
    const list = groups.get(key) ?? [];
    list.push(entry);
    groups.set(key, list);
  }
  const results: ScoreBatchResult[] = [];
  const poisoned: Poisoned[] = [];
  for (const list of groups.values()) {
    const byId = new Map(list.map((e) => [e.id, e]));
    const first = list[0]!.stored;
    const augmentation = first.augmentation ?? augmentationSpecOf(config.scoring);
    const m = first.kind === 'patches' ? first.shape[0]! : (augmentation.m ?? config.scoring.m);
    const options = {
      m,
      augmentation: { ...augmentation, m },
      seed: config.scoring.patchSeed,
      scoreOptions: scoreOptionsOf(config.scoring),
    };
    await isolatePoison(
      list.map((e) => e.id),
      async (ids) => {
        results.push(
          await scorer.score(
            ids.map((id) => scoringInput(id, byId.get(id)!.stored)),
            options,
          ),
        );
      },
      (id, error) => {
        const reason =
          error instanceof Error && /the model takes/.test(error.message) ? 'shape-mismatch' : 'poison';
        poisoned.push({ id, error, reason });
        return Promise.resolve();
      },
    );
  }
  return { results, poisoned };
}
