/**
 * The serving stages: a version to serve goes to the scorer (one at a time, in order); a version
 * read on model-versions is loaded from the store, its sha256 and input shape checked.
 */
import { concatMap, mergeMap, type OperatorFunction } from 'rxjs';
import type { ArtifactStore } from '../../model/artifact-store.js';
import type { ModelVersionArtifact } from '../../workers/scoring-service.js';
import { artifactInputShape, formatShape, type PatchShape } from '../initial-model.js';
import type { Effect, Input } from '../loop/io.js';
import type { Clock, ScorerPort } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

export function serveModels(scorer: ScorerPort, clock: Clock): OperatorFunction<Of<'serve'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        try {
          await scorer.setModel({ version: e.model.version, ...e.model.artifact } as ModelVersionArtifact);
          return { type: 'served', version: e.model.version, now: clock.now() };
        } catch (error) {
          return { type: 'version-refused', version: e.model.version, error, now: clock.now() };
        }
      }),
    );
}

export function loadVersions(
  store: ArtifactStore,
  m0Shape: PatchShape,
  m0Path: string,
  clock: Clock,
): OperatorFunction<Of<'load-version'>, Input> {
  return (effects) =>
    effects.pipe(
      mergeMap(async (e): Promise<Input> => {
        const msg = e.message;
        try {
          const loaded = await store.load(msg.artifact.location, msg.artifact.sha256);
          await checkInputShape(msg.version, loaded.artifact, m0Shape, m0Path);
          return { type: 'version-loaded', message: msg, artifact: loaded.artifact, now: clock.now() };
        } catch (error) {
          return { type: 'version-refused', version: msg.version, error, now: clock.now() };
        }
      }),
    );
}

/** Refuses a version whose input is not M0's: it cannot score what M0's lineage takes. */
export async function checkInputShape(
  version: string,
  artifact: Parameters<typeof artifactInputShape>[0],
  m0Shape: PatchShape,
  m0Path: string,
): Promise<void> {
  const shape = await artifactInputShape(artifact);
  if (formatShape(shape) !== formatShape(m0Shape))
    throw new Error(
      `version ${version} takes ${formatShape(shape)} patches, M0 (ACFT_MODEL_M0_PATH=${m0Path}) takes ${formatShape(m0Shape)}`,
    );
}
