/**
 * A worker thread that measures its backend's matrix-multiply peak: square float32 tf.matMul at a
 * few sizes, each repeated for at least `seconds`, the best GFLOP/s kept. One thread, as one
 * scoring worker has.
 */
import { workerData } from 'node:worker_threads';
import { initBackend, tf, type BackendRequest } from '../../src/model/backend.js';
import { serveRpc, type RpcMethod } from '../../src/workers/worker-host.js';

export interface PeakResult {
  backend: string;
  /** GFLOP/s per size (2 n^3 flops per product). */
  bySize: { n: number; gflops: number; reps: number; seconds: number }[];
  bestGflops: number;
}

export type PeakWorkerApi = {
  peak: RpcMethod<{ sizes: number[]; seconds: number }, PeakResult>;
};

const info = await initBackend((workerData as { backend: BackendRequest }).backend);

serveRpc<PeakWorkerApi>(
  {
    async peak({ sizes, seconds }) {
      const bySize: PeakResult['bySize'] = [];
      for (const n of sizes) {
        const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
        const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
        // Warm-up (kernel set-up, first allocations).
        const w = tf.matMul(a, b);
        await w.data();
        w.dispose();
        let reps = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < seconds * 1000 || reps === 0) {
          const c = tf.matMul(a, b);
          await c.data();
          c.dispose();
          reps++;
        }
        const s = (performance.now() - t0) / 1000;
        tf.dispose([a, b]);
        bySize.push({ n, gflops: (2 * n ** 3 * reps) / s / 1e9, reps, seconds: s });
      }
      return { backend: info.name, bySize, bestGflops: Math.max(...bySize.map((x) => x.gflops)) };
    },
  },
  { backend: info.name },
);
