/** `acft bench`: the options, the presets, and the summary printed at the end. */
import path from 'node:path';
import { Command, Option } from 'commander';
import { parseStrategy, type StrategyCode } from '../core/strategies.js';
import { PAPER_POLYP_SPEC, UPRIGHT_SPEC, type AugmentationSpec } from '../core/patches.js';
import { DEFAULT_FINE_TUNE, type OptimizerName } from '../model/fine-tune.js';
import type { FineTuneDepth } from '../model/fine-tune-depth.js';
import { parseBackendRequest } from '../model/backend.js';
import { parseCriterion, POLICIES } from '../bench/policy.js';
import { runBench, type BenchOptions } from '../bench/run-bench.js';
import {
  choiceOption,
  fineTuneDepthOption,
  intListOption,
  intOption,
  listOption,
  numberOption,
} from './options.js';
import { DEFAULT_M0_DIR } from './paths.js';

const AUGMENTATIONS: Record<string, AugmentationSpec> = { upright: UPRIGHT_SPEC, paper: PAPER_POLYP_SPEC };

interface BenchFlags {
  dataset: string;
  positive?: number[];
  negative?: number[];
  classes?: number[];
  ratio?: number;
  strategies: StrategyCode[];
  criteria: ReturnType<typeof parseCriterion>[];
  policies: string[];
  b: number;
  steps: number;
  m: number;
  alpha: number;
  omega: number;
  seeds: number[];
  backend: string;
  out: string;
  workers: number;
  poolSize: number;
  evalSize: number;
  evalSplit: 'validation' | 'test';
  augmentation: string;
  optimizer: OptimizerName;
  lr: number;
  epochs: number;
  batchSize: number;
  gamma: number;
  fineTuneDepth: FineTuneDepth;
  m0: string;
  quick?: boolean;
  progress: boolean;
}

/** `--quick`: one seed, a small pool, short run (finishes in minutes on 2 cores). */
const QUICK = { poolSize: 600, evalSize: 600, m: 8, b: 20, steps: 5, seeds: [1] };

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'Replay a labeled image set as a candidate stream with an oracle radiologist and run ACFT (Algorithm 1) per strategy, criterion, policy and seed; write JSON, a markdown ALC table and an SVG learning-curve plot.',
    )
    .option(
      '--dataset <name|dir>',
      "'fashion-mnist', 'mnist', or a directory in the loader format",
      'fashion-mnist',
    )
    .option('--positive <classes>', 'binary task: positive class ids, e.g. 6', intListOption('--positive'))
    .option(
      '--negative <classes>',
      'binary task: negative class ids, e.g. 0,2,4',
      intListOption('--negative'),
    )
    .option(
      '--classes <classes>',
      'multi-class task: class ids, e.g. 0,1,2,3,4,5,6,7,8,9',
      intListOption('--classes'),
    )
    .option('--ratio <n>', 'binary task: negatives per positive (subsampled)', numberOption('--ratio', 0))
    .option(
      '--strategies <list>',
      'comma list of RFT(LQ), AFT(LQ), ACFT(Q), ACFT(LQ), ACFT(HQ)',
      listOption('--strategies', (s) => parseStrategy(s).code),
      ['RFT(LQ)', 'AFT(LQ)', 'ACFT(Q)', 'ACFT(LQ)', 'ACFT(HQ)'] as StrategyCode[],
    )
    .option(
      '--criteria <list>',
      "comma list of criteria: entropy|diversity [+majority] [+random], e.g. 'entropy+majority+random,diversity+random'",
      listOption('--criteria', parseCriterion),
      [parseCriterion('entropy+majority+random')],
    )
    .option(
      '--policies <list>',
      `comma list of loop policies: ${Object.keys(POLICIES).join(', ')}`,
      listOption('--policies', (s) => {
        if (!POLICIES[s]) throw new Error(`unknown policy '${s}'`);
        return s;
      }),
      ['paper', 'default'],
    )
    .option('--b <n>', 'candidates labeled per step', intOption('--b', 1), 25)
    .option('--steps <n>', 'steps (labels = b x steps)', intOption('--steps', 1), 12)
    .option('--m <n>', 'patches per candidate', intOption('--m', 1), 24)
    .option('--alpha <x>', 'majority selection ratio', numberOption('--alpha', 0, 1), 0.25)
    .option('--omega <n>', 'random extension (shortlist = omega x b)', numberOption('--omega', 1), 5)
    .option('--seeds <list>', 'comma list of seeds', intListOption('--seeds'), [1, 2, 3])
    .option(
      '--backend <name>',
      'tfjs backend: auto|tensorflow-gpu|tensorflow|wasm|cpu',
      process.env.ACFT_BACKEND ?? 'auto',
    )
    .option('--out <dir>', 'output directory', 'bench-output')
    .option('--workers <n>', 'worker threads (one backend each)', intOption('--workers', 1), 2)
    .option('--pool-size <n>', 'candidates drawn from the training pool', intOption('--pool-size', 1), 3000)
    .option(
      '--eval-size <n>',
      'candidates drawn from the evaluation split',
      intOption('--eval-size', 1),
      2000,
    )
    .addOption(
      new Option('--eval-split <split>', 'split the curves are measured on (choose defaults on validation)')
        .choices(['validation', 'test'])
        .default('test'),
    )
    .option(
      '--augmentation <preset>',
      'patch preset: upright (translations, scales, flips) or paper (adds rotations)',
      choiceOption('--augmentation', ['upright', 'paper']),
      'upright',
    )
    .option(
      '--optimizer <name>',
      'adam or sgd-momentum',
      choiceOption('--optimizer', ['adam', 'sgd-momentum'] as const),
      DEFAULT_FINE_TUNE.optimizer,
    )
    .option(
      '--lr <x>',
      'from-M0 learning rate of all layers but the head (head: 10x)',
      numberOption('--lr', 0),
      DEFAULT_FINE_TUNE.learningRate,
    )
    .option('--epochs <n>', 'epochs per fine-tuning step', intOption('--epochs', 1), DEFAULT_FINE_TUNE.epochs)
    .option(
      '--batch-size <n>',
      'fine-tuning batch size',
      intOption('--batch-size', 1),
      DEFAULT_FINE_TUNE.batchSize,
    )
    .option(
      '--gamma <x>',
      'learning-rate decay per epoch',
      numberOption('--gamma', 0, 1),
      DEFAULT_FINE_TUNE.gamma,
    )
    .option(
      '--fine-tune-depth <n>',
      "weight layers fine-tuned, from the output ('all', or 1 = the head only); the rest stay frozen",
      fineTuneDepthOption,
      DEFAULT_FINE_TUNE.depth,
    )
    .option('--m0 <dir>', 'pre-trained model M0 (tfjs LayersModel directory)', DEFAULT_M0_DIR)
    .option('--quick', `preset that finishes in minutes: ${JSON.stringify(QUICK)} (explicit flags still win)`)
    .option('--no-progress', 'no progress bar')
    .action(async (flags: BenchFlags, cmd: Command) => {
      const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      if (flags.quick) {
        for (const [k, v] of Object.entries(QUICK)) {
          if (!given(k)) (flags as unknown as Record<string, unknown>)[k] = v;
        }
      }
      if (!flags.classes && !flags.positive) {
        flags.positive = [6];
        flags.negative ??= [0, 2, 4];
        flags.ratio ??= 9;
      }
      const augmentation = { ...AUGMENTATIONS[flags.augmentation]!, m: flags.m };
      const options: BenchOptions = {
        data: {
          dataset: flags.dataset,
          positive: flags.positive,
          negative: flags.negative,
          classes: flags.classes,
          ratio: flags.ratio,
          augmentation,
          poolSize: flags.poolSize,
          evaluationSize: flags.evalSize,
          evaluationSplit: flags.evalSplit,
        },
        strategies: flags.strategies,
        criteria: flags.criteria,
        policies: flags.policies.map((name) => ({ name, policy: POLICIES[name]! })),
        seeds: flags.seeds,
        b: flags.b,
        steps: flags.steps,
        omega: flags.omega,
        alpha: flags.alpha,
        fineTune: {
          optimizer: flags.optimizer,
          learningRate: flags.lr,
          headLearningRateMultiplier: DEFAULT_FINE_TUNE.headLearningRateMultiplier,
          momentum: DEFAULT_FINE_TUNE.momentum,
          gamma: flags.gamma,
          epochs: flags.epochs,
          batchSize: flags.batchSize,
          classBalanced: false,
          depth: flags.fineTuneDepth,
        },
        m0Dir: path.resolve(flags.m0),
        backend: parseBackendRequest(flags.backend),
        workers: flags.workers,
        out: path.resolve(flags.out),
        scoreChunk: 256,
        progress: flags.progress && process.stderr.isTTY === true,
        title: flags.classes
          ? `${flags.dataset} classes ${flags.classes.join(',')}`
          : `${flags.dataset} ${flags.positive?.join(',')} vs ${flags.negative?.join(',') ?? 'rest'} at 1:${flags.ratio ?? '-'}`,
      };
      const out = await runBench(options);
      console.log(
        `backend ${out.backend}; ${out.results.length} trajectories in ${out.seconds.toFixed(0)} s`,
      );
      for (const g of out.groups) {
        console.log(
          `${g.key.padEnd(48)} ALC ${g.alc.mean.toFixed(3)} ± ${g.alc.sd.toFixed(3)}  final ${g.finalAuc.mean.toFixed(3)}  saving ${
            g.annotationSavingVsRandom === null ? '-' : (g.annotationSavingVsRandom * 100).toFixed(1) + '%'
          }`,
        );
      }
      console.log(`wrote ${out.files.json}, ${out.files.markdown}, ${out.files.svg}`);
    });
}
