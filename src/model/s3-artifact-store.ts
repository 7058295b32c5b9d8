/**
 * Model versions in S3-compatible object storage (AWS S3, MinIO, Ceph RGW, moto...): the same
 * layout as a directory store, `<prefix>/<version>/{model.json,weights.bin}`, under
 * `s3://bucket/prefix`. weights.bin is written before model.json, and a version is listed only
 * once its model.json (which records the weights' sha256) exists, so a half-written version is
 * never seen. Loading downloads the objects to a temporary directory and reads them with the
 * directory loader, so every check (sha256, truncation, NaN) is the same. Credentials come from
 * the AWS SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import {
  ModelArtifactError,
  loadArtifactFromPath,
  saveArtifactToDir,
  type ModelArtifact,
  type ModelVersionMeta,
} from './model-store.js';
import {
  DirectoryArtifactStore,
  isS3Url,
  type ArtifactStore,
  type LoadedArtifact,
} from './artifact-store.js';

/** Options of the S3 client (all optional: the SDK's defaults and environment apply). */
export interface S3Options {
  /** Endpoint of an S3-compatible server, e.g. http://127.0.0.1:9000. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (http://host/bucket/key), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
}

/** `s3://bucket/prefix` split; the prefix has no leading or trailing slash. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (m === null || m[1] === undefined) throw new Error(`'${url}' is not an s3://bucket/prefix URL`);
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

const VERSION_ID = /^[A-Za-z0-9._-]+$/;

export class S3ArtifactStore implements ArtifactStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly local = new DirectoryArtifactStore(os.tmpdir());

  constructor(
    readonly root: string,
    options: S3Options = {},
  ) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(root));
    const config: S3ClientConfig = {
      region: options.region ?? 'us-east-1',
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
    };
    this.client = new S3Client(config);
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].filter((p) => p !== '').join('/');
  }

  locationOf(version: string): string {
    if (!VERSION_ID.test(version)) throw new Error(`invalid model version id '${version}'`);
    return `s3://${this.bucket}/${this.key(version)}`;
  }

  async saveArtifact(
    artifact: ModelArtifact,
    meta: ModelVersionMeta,
  ): Promise<{ location: string; sha256: string }> {
    const location = this.locationOf(meta.version);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'acft-s3-'));
    try {
      const stored = await saveArtifactToDir(artifact, path.join(tmp, meta.version), meta);
      // weights first: model.json, written last, is what makes the version visible.
      for (const file of ['weights.bin', 'model.json']) {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.key(meta.version, file),
            Body: await readFile(path.join(stored.dir, file)),
          }),
        );
      }
      return { location, sha256: stored.sha256 };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async getObject(bucket: string, key: string): Promise<Uint8Array> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (out.Body === undefined) throw new Error('empty body');
      return await out.Body.transformToByteArray();
    } catch (cause) {
      const name = (cause as { name?: string }).name;
      throw new ModelArtifactError(
        `cannot read s3://${bucket}/${key}: ${(cause as Error).message}`,
        name === 'NoSuchKey' ? 'missing' : 'malformed',
        { cause },
      );
    }
  }

  async list(): Promise<ModelVersionMeta[]> {
    const metas: ModelVersionMeta[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix === '' ? undefined : `${this.prefix}/`,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.endsWith('/model.json')) continue;
        try {
          const json = JSON.parse(Buffer.from(await this.getObject(this.bucket, o.Key)).toString('utf8')) as {
            acft?: ModelVersionMeta;
          };
          if (json.acft) metas.push(json.acft);
        } catch {
          // Not a version (or unreadable): listing skips it; loading it would report why.
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return metas.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async load(location: string, expectedSha256?: string): Promise<LoadedArtifact> {
    if (!isS3Url(location)) return this.local.load(location, expectedSha256);
    const { bucket, prefix } = parseS3Url(location);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'acft-s3-'));
    try {
      const jsonBytes = await this.getObject(bucket, `${prefix}/model.json`);
      await writeFile(path.join(tmp, 'model.json'), jsonBytes);
      let manifest: { weightsManifest?: { paths?: string[] }[] };
      try {
        manifest = JSON.parse(Buffer.from(jsonBytes).toString('utf8')) as typeof manifest;
      } catch (cause) {
        throw new ModelArtifactError(`${location}/model.json is not JSON`, 'malformed', { cause });
      }
      for (const group of manifest.weightsManifest ?? []) {
        for (const p of group.paths ?? []) {
          if (!/^[A-Za-z0-9._-]+$/.test(p)) throw new ModelArtifactError(`bad shard name ${p}`, 'malformed');
          await writeFile(path.join(tmp, p), await this.getObject(bucket, `${prefix}/${p}`));
        }
      }
      return await loadArtifactFromPath(tmp, expectedSha256);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}

/** The store a `model.storeDir` names: a directory, or `s3://bucket/prefix`. */
export function createArtifactStore(root: string, s3: S3Options = {}): ArtifactStore {
  return isS3Url(root) ? new S3ArtifactStore(root, s3) : new DirectoryArtifactStore(root);
}
