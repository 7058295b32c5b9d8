/**
 * The S3 model store against a real S3-compatible server (moto's, see test/support/moto.ts).
 * Versions round-trip with their sha256, are listed once complete, load from the location
 * another instance published, and a truncated, altered or missing artifact is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { initBackend } from '../../src/model/backend.js';
import { buildCnn } from '../../src/model/cnn.js';
import { ModelArtifactError, serializeModel, type ModelArtifact } from '../../src/model/model-store.js';
import { S3ArtifactStore, createArtifactStore } from '../../src/model/s3-artifact-store.js';
import { startMoto, type MotoServer } from '../support/moto.js';

const meta = (version: string, createdAt: string) => ({
  version,
  parent: null,
  createdAt,
  info: { status: 'promoted' },
});

describe('S3 model store on a real S3-compatible server (moto)', { timeout: 120_000 }, () => {
  let moto: MotoServer | undefined;
  let artifact: ModelArtifact;
  const bucket = `acft-test-${process.pid}`;
  const options = () => (moto as MotoServer).options;

  before(async () => {
    moto = await startMoto();
    await moto.createBucket(bucket);
    await initBackend('cpu');
    const model = buildCnn({ height: 28, width: 28, channels: 1, numClasses: 2, seed: 3 });
    artifact = await serializeModel(model);
    model.dispose();
  });

  after(() => {
    moto?.stop();
  });

  it('saves, lists and loads versions with their sha256; another instance loads the published location', async () => {
    const store = createArtifactStore(`s3://${bucket}/models`, options());
    assert.ok(store instanceof S3ArtifactStore);
    assert.deepEqual(await store.list(), []);
    const v1 = await store.saveArtifact(artifact, meta('v1', '2026-01-01T00:00:00.000Z'));
    const v2 = await store.saveArtifact(artifact, meta('v2', '2026-01-02T00:00:00.000Z'));
    assert.equal(v1.location, `s3://${bucket}/models/v1`);
    assert.match(v1.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      (await store.list()).map((m) => m.version),
      ['v1', 'v2'],
    );
    // Another instance, with its own client, loads what was published on model-versions.
    const other = createArtifactStore(`s3://${bucket}/models`, options());
    const loaded = await other.load(v2.location, v2.sha256);
    assert.equal(loaded.sha256, v2.sha256);
    assert.equal(loaded.meta?.version, 'v2');
    assert.deepEqual(Buffer.from(loaded.artifact.weights), Buffer.from(artifact.weights));
    assert.equal((await other.load(other.locationOf('v1'))).sha256, v1.sha256);
  });

  it('refuses a wrong sha256, truncated weights and a missing version', async () => {
    const store = createArtifactStore(`s3://${bucket}/bad`, options());
    const saved = await store.saveArtifact(artifact, meta('v1', '2026-01-01T00:00:00.000Z'));
    await assert.rejects(
      store.load(saved.location, 'f'.repeat(64)),
      (e) => e instanceof ModelArtifactError && e.code === 'checksum',
    );
    await new S3Client(options()).send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'bad/v1/weights.bin',
        Body: Buffer.from(artifact.weights).subarray(0, 100),
      }),
    );
    await assert.rejects(store.load(saved.location), (e) => e instanceof ModelArtifactError);
    await assert.rejects(
      store.load(store.locationOf('nope')),
      (e) => e instanceof ModelArtifactError && e.code === 'missing',
    );
  });
});
