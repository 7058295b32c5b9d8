/**
 * Where model versions live: a port with two adapters. A directory (the default; shared by all
 * instances through a shared volume when several run) or S3-compatible object storage
 * (`s3://bucket/prefix`, see s3-artifact-store.ts). A version's location, as published on
 * `model-versions`, is what any instance loads it from; the sha256 is checked on every load.
 */
import {
  ModelStore,
  loadArtifactFromPath,
  type ModelArtifact,
  type ModelVersionMeta,
} from './model-store.js';

/** A loaded version: its artifacts, the sha256 of its weights, and its record. */
export interface LoadedArtifact {
  artifact: ModelArtifact;
  sha256: string;
  meta: ModelVersionMeta | undefined;
}

/** The model store port. */
export interface ArtifactStore {
  /** The store's root (a directory or an s3:// URL), for logs. */
  readonly root: string;
  /** Saves a version; resolves to its location and the sha256 of its weights. */
  saveArtifact(
    artifact: ModelArtifact,
    meta: ModelVersionMeta,
  ): Promise<{ location: string; sha256: string }>;
  /** The records of the complete versions in the store, oldest first. */
  list(): Promise<ModelVersionMeta[]>;
  /** Where a version of this store is. */
  locationOf(version: string): string;
  /**
   * Loads a version from its location, refusing weights whose sha256 differs from
   * `expectedSha256` (or from the one recorded with them), that are truncated, or non-finite.
   */
  load(location: string, expectedSha256?: string): Promise<LoadedArtifact>;
}

/** A directory of versions (model-store.ts's layout). */
export class DirectoryArtifactStore implements ArtifactStore {
  private readonly store: ModelStore;

  constructor(readonly root: string) {
    this.store = new ModelStore(root);
  }

  async saveArtifact(artifact: ModelArtifact, meta: ModelVersionMeta) {
    const stored = await this.store.saveArtifact(artifact, meta);
    return { location: stored.dir, sha256: stored.sha256 };
  }

  list(): Promise<ModelVersionMeta[]> {
    return this.store.list();
  }

  locationOf(version: string): string {
    return this.store.dirOf(version);
  }

  load(location: string, expectedSha256?: string): Promise<LoadedArtifact> {
    return loadArtifactFromPath(location, expectedSha256);
  }
}

/** Whether a store root or artifact location names S3-compatible object storage. */
export function isS3Url(location: string): boolean {
  return /^s3:\/\//i.test(location);
}
