/**
 * `acft pretrain`: trains the default M0 on MNIST digits (seeded) and saves it; or, with
 * `--pretext rotation`, pre-trains the CNN self-supervised on unlabeled images of the target
 * domain (the paper's Sec. 6.5 direction).
 */
import path from 'node:path';
import { Command } from 'commander';
import { initBackend, parseBackendRequest } from '../model/backend.js';
import { DEFAULT_PRETRAIN, pretrain } from '../model/pretrain.js';
import { loadDataset } from '../bench/dataset.js';
import { buildTask, parseClassList } from '../data/task.js';
import { rotationPretextSet } from '../data/rotation.js';
import { intOption, numberOption } from './options.js';
import { DEFAULT_M0_DIR } from './paths.js';

export function pretrainCommand(): Command {
  return new Command('pretrain')
    .description('Train the default pre-trained model M0: the small CNN on MNIST digits, seeded.')
    .option(
      '--dataset <name|dir>',
      "source-domain image set: 'mnist', 'fashion-mnist' or a directory",
      'mnist',
    )
    .option('--out <dir>', 'where to write the tfjs LayersModel', DEFAULT_M0_DIR)
    .option(
      '--seed <n>',
      'seed of initialisation and batch order',
      intOption('--seed'),
      DEFAULT_PRETRAIN.seed,
    )
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), DEFAULT_PRETRAIN.epochs)
    .option('--lr <x>', 'Adam learning rate', numberOption('--lr', 0), DEFAULT_PRETRAIN.learningRate)
    .option(
      '--pretext <task>',
      "'none' (supervised on the set's classes) or 'rotation' (self-supervised: predict which of " +
        '0/90/180/270 degrees each image was turned; no class label is used)',
      'none',
    )
    .option(
      '--classes <list>',
      "with --pretext rotation: classes whose training-part images are used; each class's " +
        'validation and test images (the last 1,500, as acft bench splits them) are left out',
    )
    .option(
      '--backend <name>',
      'tfjs backend: auto|tensorflow-gpu|tensorflow|wasm|cpu',
      process.env.ACFT_BACKEND ?? 'auto',
    )
    .action(
      async (flags: {
        dataset: string;
        out: string;
        seed: number;
        epochs: number;
        lr: number;
        backend: string;
        pretext: string;
        classes?: string;
      }) => {
        if (flags.pretext !== 'none' && flags.pretext !== 'rotation') {
          throw new Error(`--pretext must be 'none' or 'rotation', got '${flags.pretext}'`);
        }
        if (flags.classes !== undefined && flags.pretext !== 'rotation') {
          throw new Error('--classes applies to --pretext rotation only');
        }
        const backend = await initBackend(parseBackendRequest(flags.backend));
        console.log(`backend ${backend.name}`);
        const source = await loadDataset(flags.dataset);
        let set = source;
        if (flags.pretext === 'rotation') {
          const classes =
            flags.classes === undefined
              ? source.classNames.map((_, c) => c)
              : parseClassList(flags.classes, source.classNames.length);
          // The bench's split: the pool part of each class only (validation and test left out).
          const pool = buildTask(source, { classes, seed: flags.seed }).pool.indices;
          set = rotationPretextSet(source, Array.from(pool));
          console.log(`rotation pretext on ${pool.length} unlabeled images of classes ${classes.join(',')}`);
        }
        const result = await pretrain(
          set,
          path.resolve(flags.out),
          { seed: flags.seed, epochs: flags.epochs, learningRate: flags.lr },
          (epoch, loss) => console.log(`epoch ${epoch + 1}/${flags.epochs} loss ${loss.toFixed(4)}`),
        );
        console.log(
          `M0 trained on ${result.trainImages} images in ${result.seconds.toFixed(1)} s; holdout accuracy ${(result.holdoutAccuracy * 100).toFixed(1)}%; saved to ${result.stored.dir} (sha256 ${result.stored.sha256.slice(0, 12)}…)`,
        );
      },
    );
}
