/** `acft pretrain`: trains the default M0 on MNIST digits (seeded) and saves it. */
import path from 'node:path';
import { Command } from 'commander';
import { initBackend, parseBackendRequest } from '../model/backend.js';
import { DEFAULT_PRETRAIN, pretrain } from '../model/pretrain.js';
import { loadDataset } from '../bench/dataset.js';
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
      }) => {
        const backend = await initBackend(parseBackendRequest(flags.backend));
        console.log(`backend ${backend.name}`);
        const set = await loadDataset(flags.dataset);
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
