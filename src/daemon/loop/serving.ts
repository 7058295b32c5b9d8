/**
 * Which model version is served: M0's lineage only (lineage.ts), never one older than the served
 * one (replaying `model-versions` from its start must not walk the served model back), and a new
 * one is rescored into the pool once the scorer has it.
 */
import type { ModelVersionMessage } from '../../messages/index.js';
import type { ModelArtifact } from '../../model/model-store.js';
import type { Effect, Input } from './io.js';
import { onClusterVersion } from './cluster/versions.js';
import { startRescore } from './scoring.js';
import type { DaemonState, LoopContext, ServedModel } from './state.js';

/** Serves `model` from now on: the scorer gets it (effect `serve`), then the pool is rescored. */
export function serve(state: DaemonState, model: ServedModel, out: Effect[]): void {
  state.served = model;
  if (!state.versionOrder.has(model.version)) state.versionOrder.set(model.version, state.versionOrder.size);
  out.push({ type: 'serve', model });
}

/** Serves `model` unless the served one is as new or newer (or the daemon is draining). */
export function serveIfNewer(state: DaemonState, model: ServedModel, out: Effect[]): void {
  if (model.version === state.served.version || state.draining) return;
  if (model.publishedAtMs <= state.served.publishedAtMs) return;
  serve(state, model, out);
}

/** The scorer serves `version`: rescore the pool with it. */
export function onServed(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'served' }>,
  out: Effect[],
): void {
  if (input.version !== state.served.version) return; // a newer one is on its way
  out.push({
    type: 'emit',
    event: { type: 'serving', version: state.served.version, holdoutAuc: state.served.holdoutAuc },
  });
  startRescore(state, ctx, input.now, out);
}

/** A message read on model-versions: loaded and served if it is newer and of this lineage. */
export function onVersionRead(
  state: DaemonState,
  ctx: LoopContext,
  input: Extract<Input, { type: 'version-read' }>,
  out: Effect[],
): void {
  const msg = input.message;
  if (state.cluster) onClusterVersion(state, ctx, msg, input.now, out);
  state.publishedVersions.add(msg.version);
  if (!servable(state, msg)) return;
  if (msg.m0 !== ctx.m0.version) {
    out.push({
      type: 'emit',
      event: { type: 'model-refused', version: msg.version, reason: 'lineage', m0: msg.m0 ?? null },
    });
    return;
  }
  out.push({ type: 'load-version', message: msg });
}

function servable(state: DaemonState, msg: ModelVersionMessage): boolean {
  return (
    msg.status === 'promoted' &&
    msg.version !== state.served.version &&
    !state.draining &&
    Date.parse(msg.time) > state.served.publishedAtMs
  );
}

export function onVersionLoaded(
  state: DaemonState,
  input: Extract<Input, { type: 'version-loaded' }>,
  out: Effect[],
): void {
  const { message, artifact } = input;
  // Another version may have been served while this one loaded.
  if (!servable(state, message)) return;
  serve(state, modelOf(message, artifact), out);
}

function modelOf(message: ModelVersionMessage, artifact: ModelArtifact): ServedModel {
  return {
    version: message.version,
    artifact,
    holdoutAuc: message.metrics.holdoutAuc,
    publishedAtMs: Date.parse(message.time),
  };
}

export function onVersionRefused(input: Extract<Input, { type: 'version-refused' }>, out: Effect[]): void {
  out.push({
    type: 'emit',
    event: { type: 'model-refused', version: input.version, reason: 'artifact', err: input.error },
  });
}
