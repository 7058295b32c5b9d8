/**
 * The outbox: model-version messages decided by a window but maybe not yet on their topic.
 *
 * A window's version is checkpointed (state with its labels consumed, the version served, the
 * message in the outbox) before the message is sent, so that no crash can leave a version on the
 * topic that the state does not know about. After a restart every outbox message whose version
 * is not on the topic yet is sent again; the checkpoint after a send drops it from the outbox.
 * The outbox travels in the checkpoint file, beside the core snapshot.
 */

/** One message waiting to be sent (its value as the UTF-8 text that is sent). */
export interface OutboxEntry {
  readonly topic: string;
  readonly key: string;
  readonly value: string;
}

function isEntry(x: unknown): x is OutboxEntry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return typeof e['topic'] === 'string' && typeof e['key'] === 'string' && typeof e['value'] === 'string';
}

/** The checkpoint file's content: the core snapshot plus the outbox. */
export function withOutbox<S extends object>(
  snapshot: S,
  outbox: readonly OutboxEntry[],
): S & { outbox: OutboxEntry[] } {
  return { ...snapshot, outbox: outbox.map((e) => ({ topic: e.topic, key: e.key, value: e.value })) };
}

/** The outbox of a checkpoint file's content (none in a file without one). */
export function outboxOf(checkpoint: unknown): OutboxEntry[] {
  if (typeof checkpoint !== 'object' || checkpoint === null) return [];
  const outbox = (checkpoint as Record<string, unknown>)['outbox'];
  if (outbox === undefined) return [];
  if (!Array.isArray(outbox) || !outbox.every(isEntry))
    throw new Error('checkpoint outbox is not a list of { topic, key, value } messages');
  return outbox.map((e) => ({ topic: e.topic, key: e.key, value: e.value }));
}

/** A labeling request message whose send was not confirmed. */
export interface UnconfirmedRequest {
  readonly requestId: string;
  readonly key: string;
  readonly value: string;
}

function isUnconfirmed(x: unknown): x is UnconfirmedRequest {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return typeof e['requestId'] === 'string' && typeof e['key'] === 'string' && typeof e['value'] === 'string';
}

/**
 * The checkpoint file's content with the labeling requests whose send was not confirmed when it
 * was taken. A send still in flight when the daemon stops (an exit in a broker outage) may never
 * reach the topic, and nobody would answer it before its lease ends (hours by default): after a
 * restart the requests still outstanding are sent again, the same messages under the same
 * request ids (an annotator's tool that keys on the request id sees one request).
 */
export function withUnconfirmedRequests<S extends object>(
  file: S,
  requests: Iterable<UnconfirmedRequest>,
): S & { unconfirmedRequests: UnconfirmedRequest[] } {
  return {
    ...file,
    unconfirmedRequests: [...requests].map((r) => ({ requestId: r.requestId, key: r.key, value: r.value })),
  };
}

/** The unconfirmed labeling requests of a checkpoint file's content (none in a file without them). */
export function unconfirmedRequestsOf(checkpoint: unknown): UnconfirmedRequest[] {
  if (typeof checkpoint !== 'object' || checkpoint === null) return [];
  const list = (checkpoint as Record<string, unknown>)['unconfirmedRequests'];
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every(isUnconfirmed))
    throw new Error('checkpoint unconfirmedRequests is not a list of { requestId, key, value } messages');
  return list.map((r) => ({ requestId: r.requestId, key: r.key, value: r.value }));
}
