import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  WorkerClosedError,
  WorkerCrashedError,
  WorkerHost,
  WorkerTaskError,
  siblingModuleUrl,
} from '../../../src/workers/worker-host.js';
import type { ScoringWorkerApi } from '../../../src/workers/protocol.js';

// The scoring worker is a real served module; these tests use only the host's built-in methods
// (and an unknown one), so no model is needed.
const url = siblingModuleUrl(
  new URL('../../../src/workers/worker-host.ts', import.meta.url).href,
  'scoring-worker',
);

describe('WorkerHost', () => {
  let host: WorkerHost<ScoringWorkerApi>;
  let onStartRuns = 0;

  before(async () => {
    host = new WorkerHost<ScoringWorkerApi>({
      url,
      workerData: { backend: undefined },
      name: 'test worker',
      onStart: () => {
        onStartRuns++;
        return Promise.resolve();
      },
    });
    await host.start();
  });

  after(async () => {
    await host.close();
  });

  it('reports the ready info of the worker', () => {
    assert.equal(typeof (host.info as { backend?: unknown }).backend, 'string');
  });

  it('moves transferred buffers both ways instead of copying them', async () => {
    const data = new Float32Array(1 << 20).map((_, i) => i % 97);
    const copy = data.slice();
    const reply = await host.call('__echo', { data }, [data.buffer]);
    // Detached here: the buffer moved to the worker rather than being cloned.
    assert.equal(data.byteLength, 0);
    const back = reply.data as Float32Array;
    assert.ok(back instanceof Float32Array);
    assert.deepEqual(back, copy);
  });

  it('rejects a call to an unknown method with WorkerTaskError, and the worker lives on', async () => {
    await assert.rejects(
      host.call('nope' as 'setModel', {} as never),
      (e: unknown) => e instanceof WorkerTaskError && /unknown method 'nope'/.test(e.message),
    );
    const starts = host.starts;
    assert.deepEqual(await host.call('__echo', { x: 1 }), { x: 1 });
    assert.equal(host.starts, starts);
  });

  for (const mode of ['throw', 'exit'] as const) {
    it(`rejects every pending call with WorkerCrashedError when the worker dies (${mode}), then restarts`, async () => {
      const starts = host.starts;
      const runs = onStartRuns;
      const crash = host.call('__crash', { mode });
      const queued = host.call('__echo', { y: 2 });
      const [c, q] = await Promise.allSettled([crash, queued]);
      for (const r of [c, q]) {
        assert.equal(r.status, 'rejected');
        const e = (r as PromiseRejectedResult).reason as WorkerCrashedError;
        assert.ok(e instanceof WorkerCrashedError, String(e));
        assert.equal(e.code, 'worker-crashed');
        assert.equal(e.retryable, true);
        if (mode === 'throw') assert.match(String((e.cause as Error).message), /crash requested/);
        else assert.match(e.message, /exited with code 3/);
      }
      assert.deepEqual(await host.call('__echo', { z: 3 }), { z: 3 });
      assert.equal(host.starts, starts + 1);
      assert.equal(onStartRuns, runs + 1, 'onStart runs on the restart');
    });
  }
});

describe('WorkerHost.close', () => {
  it('is idempotent, and rejects pending and later calls with WorkerClosedError', async () => {
    const host = new WorkerHost<ScoringWorkerApi>({ url, workerData: { backend: undefined } });
    await host.start();
    const pending = host.call('__echo', { a: 1 });
    const rejected = assert.rejects(pending, WorkerClosedError);
    // Let the call be posted (a few microtasks); its answer needs a turn of the event loop.
    for (let i = 0; i < 10 && host.pendingCalls === 0; i++) await Promise.resolve();
    assert.equal(host.pendingCalls, 1, 'the call is posted and unanswered');
    const first = host.close();
    const second = host.close();
    assert.equal(first, second, 'one memoized promise');
    await first;
    await rejected;
    await assert.rejects(host.call('__echo', {}), WorkerClosedError);
    await host.close();
  });

  it('closes a host that never started', async () => {
    const host = new WorkerHost<ScoringWorkerApi>({ url, workerData: { backend: undefined } });
    await host.close();
    await assert.rejects(host.start(), WorkerClosedError);
  });
});

describe('WorkerHost start failures', () => {
  it('rejects the calls waiting for a worker that cannot start, and tries again on the next call', async () => {
    const host = new WorkerHost<ScoringWorkerApi>({
      url,
      // An explicit backend that is not installed here makes initBackend throw at start-up.
      workerData: { backend: 'tensorflow-gpu' },
      name: 'doomed worker',
    });
    try {
      await assert.rejects(host.call('__echo', {}), (e: unknown) => {
        assert.ok(e instanceof WorkerCrashedError, String(e));
        assert.match(e.message, /doomed worker crashed/);
        return true;
      });
      await assert.rejects(host.call('__echo', {}), WorkerCrashedError);
      assert.equal(host.starts, 2);
    } finally {
      await host.close();
    }
  });
});
