/**
 * Checkpoints on disk: written atomically (temp file, fsync, rename, directory fsync), one JSON
 * value per line.
 *
 * A checkpoint of a full pool is hundreds of megabytes (every pooled and labeled candidate with
 * its pixels), more than V8's longest string (2^29 - 24 characters), so it is never one string:
 * the first line is the document with its long lists emptied, and each item of those lists follows
 * on a line of its own, list by list in the order the header names them. The file is written in
 * chunks of about {@link CHUNK_CHARS} characters, yielding to the event loop between them, and read
 * back line by line.
 *
 * A file of the earlier layout (the whole document on one line) is read as it is.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

const FILE = 'checkpoint.json';

/** The layout tag of the header line. */
export const CHECKPOINT_FILE_LAYOUT = 'acft-checkpoint-lines/1';

/** The lists written one item per line, as paths of keys into the document. */
export const STREAMED_LISTS: readonly (readonly string[])[] = [
  ['pool', 'candidates'],
  ['labels', 'records'],
];

/** Characters gathered before a write. */
const CHUNK_CHARS = 1 << 20;

interface Header {
  layout: typeof CHECKPOINT_FILE_LAYOUT;
  /** Per streamed list, in {@link STREAMED_LISTS} order: its path and how many lines follow. */
  lists: { path: string[]; items: number }[];
  /** The document with each streamed list emptied. */
  document: unknown;
}

/** Thrown when a checkpoint file cannot be read back as a whole. */
export class CorruptCheckpointError extends Error {
  readonly code = 'CORRUPT_CHECKPOINT';
  readonly retryable = false;
  override readonly name = 'CorruptCheckpointError';
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The list at `keys` in `doc`, or undefined when there is none. */
function listAt(doc: unknown, keys: readonly string[]): unknown[] | undefined {
  let at: unknown = doc;
  for (const k of keys) {
    if (!isRecord(at)) return undefined;
    at = at[k];
  }
  return Array.isArray(at) ? at : undefined;
}

/** A copy of `doc` with the list at `keys` replaced by `value` (copies only along the path). */
function withListAt(doc: unknown, keys: readonly string[], value: unknown[]): unknown {
  if (keys.length === 0) return value;
  if (!isRecord(doc)) return doc;
  const [k, ...rest] = keys as [string, ...string[]];
  if (!(k in doc)) return doc;
  return { ...doc, [k]: withListAt(doc[k], rest, value) };
}

export async function writeCheckpoint(dir: string, snapshot: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, FILE);
  const tmp = `${target}.tmp-${process.pid}`;
  const lists = STREAMED_LISTS.flatMap((keys) => {
    const items = listAt(snapshot, keys);
    return items === undefined ? [] : [{ keys, items }];
  });
  let document = snapshot;
  for (const { keys } of lists) document = withListAt(document, keys, []);
  const header: Header = {
    layout: CHECKPOINT_FILE_LAYOUT,
    lists: lists.map(({ keys, items }) => ({ path: [...keys], items: items.length })),
    document,
  };
  try {
    const handle = await open(tmp, 'w');
    try {
      const chunk: string[] = [`${JSON.stringify(header)}\n`];
      let chars = chunk[0]!.length;
      for (const { items } of lists) {
        for (const item of items) {
          const line = `${JSON.stringify(item)}\n`;
          chunk.push(line);
          chars += line.length;
          if (chars >= CHUNK_CHARS) {
            const text = chunk.splice(0).join('');
            chars = 0;
            await handle.write(text);
          }
        }
      }
      if (chunk.length > 0) await handle.write(chunk.join(''));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return target;
}

function isHeader(x: unknown): x is Header {
  return (
    isRecord(x) &&
    x['layout'] === CHECKPOINT_FILE_LAYOUT &&
    Array.isArray(x['lists']) &&
    x['lists'].every(
      (l) =>
        isRecord(l) &&
        Array.isArray(l['path']) &&
        l['path'].every((k) => typeof k === 'string') &&
        Number.isSafeInteger(l['items']) &&
        (l['items'] as number) >= 0,
    ) &&
    'document' in x
  );
}

/** The last complete checkpoint, or undefined when there is none. */
export async function readCheckpoint(dir: string): Promise<unknown> {
  const file = path.join(dir, FILE);
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    const it = lines[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done === true) throw new CorruptCheckpointError(`checkpoint ${file} is empty`);
    const head = JSON.parse(first.value) as unknown;
    // The earlier layout: the whole document on one line.
    if (!isHeader(head)) return head;
    let document = head.document;
    for (const { path: keys, items } of head.lists) {
      const list: unknown[] = [];
      for (let i = 0; i < items; i++) {
        const next = await it.next();
        if (next.done === true)
          throw new CorruptCheckpointError(
            `checkpoint ${file} ends in list ${keys.join('.')} after ${i} of ${items} items`,
          );
        list.push(JSON.parse(next.value));
      }
      document = withListAt(document, keys, list);
    }
    if ((await it.next()).done !== true)
      throw new CorruptCheckpointError(`checkpoint ${file} has lines after its last list`);
    return document;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  } finally {
    lines.close();
    stream.destroy();
  }
}
