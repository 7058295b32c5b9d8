/**
 * The daemon's state at start-up: the checkpoint's (one instance) or an empty one (scale-out,
 * which rebuilds its pool and L from the topics), and the model version to serve: the one the
 * checkpoint names, or with no checkpoint the newest promoted version of M0's lineage in the
 * store, else M0 (a version in the store that no checkpoint names, saved by a window that crashed
 * before its checkpoint, is not served: its window is planned again and finds it; lineage.ts says which versions are of this lineage, and what stops a start).
 */
import { labelsReducer } from '../core/labels.js';
import { fromSnapshot, toSnapshot, type CheckpointSnapshot } from '../core/checkpoint-state.js';
import { getCandidate } from '../core/pool.js';
import type { Config } from '../config/index.js';
import type { ArtifactStore } from '../model/artifact-store.js';
import type { ModelVersionMeta } from '../model/model-store.js';
import { deadLettersOf } from './dead-letters.js';
import type { PatchShape } from './initial-model.js';
import {
  LineageMismatchError,
  checkpointLineage,
  foreignVersionsMessage,
  splitByLineage,
} from './lineage.js';
import type { DaemonEvent } from './loop/events.js';
import { emptyState, type DaemonState, type LoopContext, type ServedModel } from './loop/state.js';
import { outboxOf, unconfirmedRequestsOf, type UnconfirmedRequest } from './outbox.js';
import type { CheckpointStore } from './ports.js';
import { checkInputShape } from './stages/serving.js';
import { decodeStored } from './stored-candidate.js';
import { stateDigest } from './state-digest.js';

export interface Restored {
  readonly state: DaemonState;
  /** Requests the checkpoint holds as unconfirmed, still outstanding: sent again at start. */
  readonly resend: readonly UnconfirmedRequest[];
  /** What happened on the way (for the log). */
  readonly events: readonly DaemonEvent[];
}

export interface RestoreOptions {
  readonly config: Config;
  readonly m0: ServedModel;
  readonly m0Shape: PatchShape;
  readonly checkpoints: CheckpointStore;
  readonly store: ArtifactStore;
  readonly scaleOut: boolean;
  readonly now: number;
  /** The step's context of the state being restored (its labeling configuration). */
  readonly context: (state: DaemonState) => LoopContext;
}

export async function restore(options: RestoreOptions): Promise<Restored> {
  const { config, m0 } = options;
  const events: DaemonEvent[] = [];
  // Scale-out rebuilds the pool and L from the topics (docs/scale-out.md), not from a checkpoint.
  const file = options.scaleOut ? undefined : await options.checkpoints.read();
  const builtOn = file === undefined ? undefined : checkpointLineage(file);
  if (builtOn !== undefined && builtOn !== m0.version)
    throw new LineageMismatchError(config.state.checkpointDir, builtOn, config.model.m0Path, m0.version);
  const { ours, foreign } = splitByLineage(await options.store.list(), m0.version);
  if (foreign.length > 0) {
    const sentence = foreignVersionsMessage(foreign, options.store.root, config.model.m0Path, m0.version);
    events.push({ type: 'foreign-versions', count: foreign.length, m0: m0.version, sentence });
  }
  const named = file === undefined ? undefined : (file as CheckpointSnapshot).servedVersion;
  const promoted = ours.filter((v) => v.info['status'] === 'promoted');
  const wanted = file === undefined ? promoted.at(-1) : promoted.find((v) => v.version === named);
  const served = wanted && (await loadServed(options, wanted, events));
  // Everything is read: the state, at once.
  const state = emptyState(served ?? m0, options.now);
  let resend: UnconfirmedRequest[] = [];
  if (file !== undefined) {
    restoreCheckpoint(state, file, options.context(state));
    resend = unconfirmedRequestsOf(file).filter(
      (r) => getCandidate(state.labeling.pool, r.key)?.request?.requestId === r.requestId,
    );
  }
  events.push({
    type: 'restored',
    servedVersion: state.served.version,
    outbox: state.outbox.length,
    ...stateDigest(
      file === undefined
        ? toSnapshot(
            {
              pool: state.labeling.pool,
              labels: state.labeling.labels,
              offsets: state.offsets,
              servedVersion: null,
            },
            { encodePayload: () => null },
          )
        : (file as CheckpointSnapshot),
    ),
  });
  return { state, resend, events };
}

/** A stored version to serve, loaded and checked; undefined (and why, in `events`) if refused. */
async function loadServed(
  options: RestoreOptions,
  wanted: ModelVersionMeta,
  events: DaemonEvent[],
): Promise<ServedModel | undefined> {
  try {
    const loaded = await options.store.load(options.store.locationOf(wanted.version));
    await checkInputShape(wanted.version, loaded.artifact, options.m0Shape, options.config.model.m0Path);
    const auc = wanted.info['holdoutAuc'];
    return {
      version: wanted.version,
      artifact: loaded.artifact,
      holdoutAuc: typeof auc === 'number' ? auc : null,
      publishedAtMs: Date.parse(wanted.createdAt),
    };
  } catch (error) {
    events.push({ type: 'model-refused', version: wanted.version, reason: 'artifact', err: error });
    return undefined;
  }
}

/** Restores the checkpoint's state into `state`. */
function restoreCheckpoint(state: DaemonState, file: unknown, ctx: LoopContext): void {
  const core = fromSnapshot(file as CheckpointSnapshot, { decodePayload: decodeStored });
  state.labeling = { pool: core.pool, labels: core.labels };
  state.offsets = core.offsets;
  state.outbox = outboxOf(file).map((entry) => ({ entry, durable: true, sending: false }));
  state.deadLetters = deadLettersOf(file);
  // A window that was in flight is planned again from the same inputs (same version id).
  const inFlight = state.labeling.labels.inFlight;
  if (inFlight !== null)
    labelsReducer(
      state.labeling.labels,
      { type: 'window-abandoned', seq: inFlight.seq },
      ctx.labeling.labels,
    );
}
