import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CHECKPOINT_FILE_LAYOUT,
  CorruptCheckpointError,
  readCheckpoint,
  writeCheckpoint,
} from '../../../src/daemon/checkpoint-file.js';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'acft-ckpt-'));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function snapshotLike(candidates: unknown[], records: unknown[]) {
  return {
    format: 'acft-checkpoint/1',
    servedVersion: null,
    pool: { nextSeq: candidates.length, candidates },
    labels: { records, fresh: ['a'], pending: [], windowSeq: 2 },
    offsets: [{ topic: 't', partition: 0, position: 5, committed: 3 }],
    outbox: [{ topic: 'v', key: 'mv-1', value: '{"version":"mv-1"}' }],
  };
}

void describe('checkpoint file', () => {
  void it('is undefined when there is none', async () => {
    assert.equal(await readCheckpoint(await freshDir()), undefined);
    assert.equal(await readCheckpoint(path.join(await freshDir(), 'never-made')), undefined);
  });

  void it('writes a header line, then one line per pooled and per labeled candidate, and reads it back', async () => {
    const dir = await freshDir();
    const candidates = [
      { id: 'c\n1', payload: { data: 'AAEC' } },
      { id: 'c\u20282', payload: { data: '' } },
    ];
    const records = [{ id: 'r1', label: 1, votes: [] }];
    const doc = snapshotLike(candidates, records);
    await writeCheckpoint(dir, doc);
    const lines = (await readFile(path.join(dir, 'checkpoint.json'), 'utf8')).split('\n');
    assert.equal(lines.at(-1), '', 'the file ends with a newline');
    assert.equal(lines.length - 1, 1 + candidates.length + records.length);
    const header = JSON.parse(lines[0]!) as { layout: string; lists: unknown; document: typeof doc };
    assert.equal(header.layout, CHECKPOINT_FILE_LAYOUT);
    assert.deepEqual(header.lists, [
      { path: ['pool', 'candidates'], items: 2 },
      { path: ['labels', 'records'], items: 1 },
    ]);
    assert.deepEqual(header.document.pool.candidates, []);
    assert.deepEqual(await readCheckpoint(dir), doc);
    assert.deepEqual(await readdir(dir), ['checkpoint.json'], 'no temporary file is left');
  });

  void it('round-trips any JSON document, whatever its lists hold', async () => {
    const dir = await freshDir();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue(), { maxLength: 8 }),
        fc.array(fc.jsonValue(), { maxLength: 8 }),
        fc.jsonValue(),
        async (candidates, records, extra) => {
          const doc = { ...snapshotLike(candidates, records), extra };
          await writeCheckpoint(dir, doc);
          // JSON has no -0: compare with what JSON itself makes of the document.
          assert.deepEqual(await readCheckpoint(dir), JSON.parse(JSON.stringify(doc)));
        },
      ),
      { numRuns: 60, seed: 6 },
    );
  });

  void it('leaves a document without those lists as it is', async () => {
    const dir = await freshDir();
    const doc = { format: 'other', pool: { candidates: 'not a list' } };
    await writeCheckpoint(dir, doc);
    assert.deepEqual(await readCheckpoint(dir), doc);
  });

  void it('reads a file of the earlier layout, the whole document on one line', async () => {
    const dir = await freshDir();
    const doc = snapshotLike([{ id: 'c1' }], []);
    await writeFile(path.join(dir, 'checkpoint.json'), JSON.stringify(doc));
    assert.deepEqual(await readCheckpoint(dir), doc);
  });

  void it('refuses a file that is empty, cut short, or has lines after its last list', async () => {
    const dir = await freshDir();
    await writeCheckpoint(dir, snapshotLike([{ id: 'c1' }, { id: 'c2' }], [{ id: 'r1' }]));
    const file = path.join(dir, 'checkpoint.json');
    const whole = await readFile(file, 'utf8');
    const lines = whole.split('\n').slice(0, -1);

    await writeFile(file, '');
    await assert.rejects(readCheckpoint(dir), CorruptCheckpointError);
    await writeFile(file, `${lines.slice(0, 2).join('\n')}\n`);
    await assert.rejects(readCheckpoint(dir), /ends in list pool\.candidates after 1 of 2 items/);
    await writeFile(file, `${lines.slice(0, 3).join('\n')}\n`);
    await assert.rejects(readCheckpoint(dir), /ends in list labels\.records after 0 of 1 items/);
    await writeFile(file, `${whole}{"id":"c3"}\n`);
    await assert.rejects(readCheckpoint(dir), /lines after its last list/);
    await writeFile(file, whole.slice(0, 20));
    await assert.rejects(readCheckpoint(dir), SyntaxError);
  });
});
