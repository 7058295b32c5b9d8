/**
 * Messages the daemon has decided on but that may not be on their topic yet, kept in the
 * checkpoint file beside the core snapshot:
 *
 * - The outbox: model-version messages. A window's version is checkpointed (state with its labels
 *   consumed, the version served, the message in the outbox) before the message is sent, so that
 *   no crash can leave a version on the topic that the state does not know about. After a restart
 *   every outbox message whose version is not on the topic yet is sent again; the checkpoint
 *   after a send drops it from the outbox.
 * - Unconfirmed labeling requests (see {@link withUnconfirmedRequests}).
 */

/**
 * The list under `field` of a checkpoint file's content, each item an object whose `keys` are
 * strings, copied down to those keys; none in a file without the field.
 */
function stringRecordsOf<K extends string>(
  checkpoint: unknown,
  field: string,
  keys: readonly K[],
): Record<K, string>[] {
  if (typeof checkpoint !== 'object' || checkpoint === null) return [];
  const list = (checkpoint as Record<string, unknown>)[field];
  if (list === undefined) return [];
  const valid = (x: unknown): x is Record<K, string> =>
    typeof x === 'object' &&
    x !== null &&
    keys.every((k) => typeof (x as Record<string, unknown>)[k] === 'string');
  if (!Array.isArray(list) || !list.every(valid))
    throw new Error(`checkpoint ${field} is not a list of { ${keys.join(', ')} } messages`);
  return list.map((item) => Object.fromEntries(keys.map((k) => [k, item[k]])) as Record<K, string>);
}

/** One message waiting to be sent (its value as the UTF-8 text that is sent). */
export interface OutboxEntry {
  readonly topic: string;
  readonly key: string;
  readonly value: string;
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
  return stringRecordsOf(checkpoint, 'outbox', ['topic', 'key', 'value']);
}

/** A labeling request message whose send was not confirmed. */
export interface UnconfirmedRequest {
  readonly requestId: string;
  readonly key: string;
  readonly value: string;
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
  return stringRecordsOf(checkpoint, 'unconfirmedRequests', ['requestId', 'key', 'value']);
}
