/** Checkpoints on disk: written atomically (temp file, fsync, rename, directory fsync). */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

const FILE = 'checkpoint.json';

export async function writeCheckpoint(dir: string, snapshot: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, FILE);
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(snapshot));
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

/** The last complete checkpoint, or undefined when there is none. */
export async function readCheckpoint(dir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path.join(dir, FILE), 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
