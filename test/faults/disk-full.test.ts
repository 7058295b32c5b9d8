/**
 * Fault test, a full disk (issue 5, scenario 10): the checkpoint directory and the model store on
 * a 4 MiB tmpfs, which the test fills while the daemon works. Checkpoint and model-version writes
 * fail with ENOSPC; the previous checkpoint stays valid, no offset is committed past it, and no
 * version is published whose state was not checkpointed. Freed, the daemon carries on; SIGKILLed
 * and restarted, it restores its last checkpoint. Needs root (mount -t tmpfs), as on the CI runner
 * and the dev container. `npm run test:faults`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FaultScenario } from '../support/fault-scenario.js';
import { kafkaClient, useKafka } from '../support/kafka.js';

const kafka = useKafka();

/** Writes zeros into `file` until the file system is full. */
async function fill(file: string): Promise<number> {
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(16 * 1024);
  let written = 0;
  try {
    for (;;) {
      try {
        await handle.write(chunk);
        written += chunk.length;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
    // The last partial chunk, byte by byte.
    for (;;) {
      try {
        await handle.write(Buffer.alloc(1));
        written++;
      } catch {
        break;
      }
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}

describe('disk full', { timeout: 1_200_000 }, () => {
  it('keeps the previous checkpoint valid and commits nothing past it', async () => {
    const s0 = new FaultScenario(kafka.brokers, 'diskfull');
    const mnt = path.join(await s0.dir, 'small');
    await mkdir(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    const s = new FaultScenario(kafka.brokers, 'diskfull', {
      ACFT_STATE_CHECKPOINT_DIR: path.join(mnt, 'state'),
      ACFT_MODEL_STORE_DIR: path.join(mnt, 'models'),
    });
    try {
      const d1 = await s.startDaemon();
      await d1.waitForEvent('started');
      await s.collect();
      s.startOracle();
      await s.sendCandidates(0, 40);
      await s.waitFor('a first version', () => s.versions.length >= 1, 180_000, d1);
      await new Promise((r) => setTimeout(r, 1_500));

      const filler = path.join(mnt, 'filler');
      const filled = await fill(filler);
      // The checkpoint as it is the moment the disk is full: nothing may go past it.
      await new Promise((r) => setTimeout(r, 1_000));
      const before = await s.digest();
      const versionsBefore = s.versions.length;
      const linesBefore = d1.lines.length;
      await s.sendCandidates(40, 30);
      await s.waitFor(
        'a failed checkpoint or model write',
        () => d1.lines.slice(linesBefore).some((l) => JSON.stringify(l).includes('ENOSPC')),
        120_000,
        d1,
      );
      await new Promise((r) => setTimeout(r, 5_000));
      assert.ok(d1.running, 'a full disk does not kill the daemon');
      const snap = (await s.checkpoint())!;
      const during = await s.digest();
      assert.deepEqual(during, before, 'the previous checkpoint is intact');
      // Committed offsets never pass the checkpoint's positions.
      const admin = kafkaClient(s.brokers, `${s.name}-admin2`).admin();
      await admin.connect();
      try {
        for (const topic of [s.topics.candidates, s.topics.feedback]) {
          const [committed] = await admin.fetchOffsets({ groupId: s.groupId, topics: [topic] });
          for (const p of committed!.partitions) {
            const pos = snap.offsets.find((o) => o.topic === topic && o.partition === p.partition);
            const position = pos?.position ?? 0;
            assert.ok(
              Number(p.offset) <= position,
              `${topic}[${p.partition}] committed ${p.offset} past ${position}`,
            );
          }
        }
      } finally {
        await admin.disconnect();
      }
      const publishedWhileFull = s.versions.length - versionsBefore;
      assert.equal(publishedWhileFull, 0, 'no version published while its state could not be checkpointed');
      const enospc = d1.lines.slice(linesBefore).filter((l) => JSON.stringify(l).includes('ENOSPC'));

      // Space again: the daemon carries on by itself.
      await rm(filler);
      await s.waitFor(
        'a version after the disk was freed',
        () => s.versions.length > versionsBefore,
        240_000,
        d1,
      );
      await new Promise((r) => setTimeout(r, 1_500));
      await s.stopOracle();
      d1.kill('SIGKILL');
      await d1.exited;
      const last = await s.digest();
      const d2 = await s.startDaemon();
      await FaultScenario.assertRestored(d2, last);
      await d2.waitForEvent('started');
      s.startOracle();
      await new Promise((r) => setTimeout(r, 3_000));
      await s.stopOracle();
      await s.waitAllCommitted();
      const exit = await d2.stop();
      assert.equal(exit.code, 0);
      const counts = await s.verify();
      s.report('disk full (4 MiB tmpfs)', counts, {
        fillerBytes: filled,
        enospcErrors: enospc.length,
        enospcEvents: [...new Set(enospc.map((l) => l.event))],
        publishedWhileFull,
      });
    } finally {
      await s.cleanup();
      execFileSync('umount', ['-l', mnt]);
      await s0.cleanup();
    }
  });
});
