/**
 * The window stages: training one window at a time (`exhaustMap`), given up when the loop
 * abandons it (`takeUntil`: shutdown, stepping down); a version the store already holds under the
 * window's id (its window crashed between saving it and the checkpoint) is reused, not trained
 * again. Then the version's save to the model store.
 */
import { concatMap, exhaustMap, filter, from, takeUntil, type Observable, type OperatorFunction } from 'rxjs';
import type { ArtifactStore } from '../../model/artifact-store.js';
import { faultPoint } from '../fault-points.js';
import type { Effect, Input } from '../loop/io.js';
import type { WindowResult } from '../loop/state.js';
import type { Clock, TrainerPort } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

export function train(
  trainer: TrainerPort,
  store: ArtifactStore,
  clock: Clock,
  abandoned: Observable<Of<'abandon-window'>>,
): OperatorFunction<Of<'train'>, Input> {
  return (effects) =>
    effects.pipe(
      exhaustMap((e) =>
        from(trained(trainer, store, clock, e)).pipe(
          takeUntil(abandoned.pipe(filter((a) => a.generation === e.generation))),
        ),
      ),
    );
}

async function trained(
  trainer: TrainerPort,
  store: ArtifactStore,
  clock: Clock,
  e: Of<'train'>,
): Promise<Input> {
  try {
    const stored = await storedResult(store, e.version);
    if (stored) return { type: 'window-trained', generation: e.generation, result: stored, now: clock.now() };
    const training = trainer.train(e.job);
    faultPoint('during-fine-tune');
    const result = await training;
    return {
      type: 'window-trained',
      generation: e.generation,
      result: {
        artifact: result.artifact,
        holdoutAuc: result.holdoutAuc,
        parentHoldoutAuc: result.parentHoldoutAuc,
        seconds: result.seconds,
        trainPatches: result.trainPatches,
        epochLosses: result.epochLosses,
      },
      now: clock.now(),
    };
  } catch (error) {
    return { type: 'window-failed', generation: e.generation, error, now: clock.now() };
  }
}

/** The result of a window whose version is already in the store, complete and intact. */
async function storedResult(store: ArtifactStore, version: string): Promise<WindowResult | undefined> {
  const meta = (await store.list()).find((m) => m.version === version);
  if (!meta) return undefined;
  try {
    const location = store.locationOf(version);
    const loaded = await store.load(location);
    const num = (x: unknown) => (typeof x === 'number' ? x : null);
    const info = meta.info;
    return {
      artifact: { ...loaded.artifact, sha256: loaded.sha256 },
      holdoutAuc: num(info['holdoutAuc']),
      parentHoldoutAuc: num(info['parentHoldoutAuc']),
      seconds: num(info['trainingSeconds']) ?? 0,
      trainPatches: num(info['trainPatches']) ?? 0,
      epochLosses: Array.isArray(info['epochLosses'])
        ? info['epochLosses'].filter((x) => typeof x === 'number')
        : [],
      storedStatus: info['status'] === 'rejected' ? 'rejected' : 'promoted',
      location,
    };
  } catch {
    // Refused (a truncated or altered artifact): trained again.
    return undefined;
  }
}

/** Saves a window's version to the model store, one at a time. */
export function saveVersion(store: ArtifactStore, clock: Clock): OperatorFunction<Of<'save-version'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        try {
          const saved = await store.saveArtifact(e.artifact, e.meta);
          faultPoint('after-version-saved');
          return {
            type: 'version-saved',
            generation: e.generation,
            location: saved.location,
            now: clock.now(),
          };
        } catch (error) {
          return { type: 'window-failed', generation: e.generation, error, now: clock.now() };
        }
      }),
    );
}
