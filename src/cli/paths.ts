/** Paths inside the installed package (works from src/ under tsx and from dist/ once built). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the directory holding package.json. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The default pre-trained model M0 (committed; rebuilt by `acft pretrain`). */
export const DEFAULT_M0_DIR = path.join(PACKAGE_ROOT, 'models', 'm0-digits');

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
