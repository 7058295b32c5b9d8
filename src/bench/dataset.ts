/** Resolves a dataset name of the CLI to a loaded image set. */
import { loadFashionMnist, loadImageSetFromDir, loadMnist, type ImageSet } from '../data/image-set.js';

export function loadDataset(name: string): Promise<ImageSet> {
  if (name === 'fashion-mnist') return loadFashionMnist();
  if (name === 'mnist') return loadMnist();
  return loadImageSetFromDir(name, { name });
}
