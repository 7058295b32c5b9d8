/**
 * Where a model version's artifact is, as far as the simulator can read it: only local
 * directories (a path, absolute or relative to `root`, or a `file:` URL). Anything else (an S3 or
 * HTTP URL, a missing path, a file) is reported as unreadable, with the reason.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A local directory to load, or why there is none. */
export type ArtifactLocation = { ok: true; dir: string } | { ok: false; reason: string };

const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** Resolves `location` to a local path (no I/O); `root` is the base of relative paths. */
export function resolveArtifactPath(location: string, root: string): ArtifactLocation {
  const scheme = URL_SCHEME.exec(location)?.[1]?.toLowerCase();
  // One letter before ':' is a Windows drive, not a scheme.
  if (scheme !== undefined && scheme.length > 1) {
    if (scheme !== 'file') return { ok: false, reason: `a ${scheme}: URL, not a local directory` };
    try {
      return { ok: true, dir: fileURLToPath(location) };
    } catch (err) {
      return { ok: false, reason: `a file: URL that is not a local path (${(err as Error).message})` };
    }
  }
  return { ok: true, dir: path.resolve(root, location) };
}

/** Resolves `location` and checks that it is a readable directory. */
export async function readableArtifactDir(location: string, root: string): Promise<ArtifactLocation> {
  const resolved = resolveArtifactPath(location, root);
  if (!resolved.ok) return resolved;
  try {
    const info = await stat(resolved.dir);
    if (!info.isDirectory()) return { ok: false, reason: `${resolved.dir} is not a directory` };
    await access(resolved.dir, constants.R_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      reason:
        code === 'ENOENT'
          ? `${resolved.dir} does not exist here`
          : `${resolved.dir} cannot be read (${code ?? (err as Error).message})`,
    };
  }
  return resolved;
}
