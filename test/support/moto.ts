/**
 * A real S3-compatible server for tests: moto's standalone server (Python; `pip install
 * 'moto[server]'`, which .ci/run does). `MOTO_SERVER` names its command when `moto_server` is not
 * on the PATH. One server per test file, on a free loopback port, stopped by `stop()`.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface MotoServer {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** S3 client options for the server (path-style addressing). */
  readonly options: { endpoint: string; forcePathStyle: true; region: string };
  createBucket(name: string): Promise<void>;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Starts moto and waits until it answers; sets dummy AWS credentials when none are set. */
export async function startMoto(): Promise<MotoServer> {
  process.env['AWS_ACCESS_KEY_ID'] ??= 'test';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'test';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const command = process.env['MOTO_SERVER'] ?? 'moto_server';
  const child = spawn(command, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (e) =>
      reject(new Error(`cannot start ${command} (pip install 'moto[server]'): ${e.message}`)),
    ),
  );
  const ready = (async () => {
    for (let i = 0; i < 300; i++) {
      try {
        await fetch(endpoint);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`${command} did not answer on ${endpoint}`);
  })();
  await Promise.race([ready, failed]);
  const options = { endpoint, forcePathStyle: true as const, region: 'us-east-1' };
  return {
    endpoint,
    options,
    createBucket: async (name) => {
      await new S3Client(options).send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}
