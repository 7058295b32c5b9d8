/** `acft demo`: the whole loop on a real Kafka broker, then an HTML report (src/demo). This module owns the signals. */
import { Command, InvalidArgumentError } from 'commander';
import { parseBackendRequest, type BackendRequest } from '../model/backend.js';
import { DemoError } from '../demo/errors.js';
import { ProgressLine } from '../demo/progress.js';
import { DemoInterruptedError, runDemo, type DemoOptions } from '../demo/run-demo.js';
import { intOption, numberOption } from './options.js';

/** The command's flags: the demo's options as commander names them (`--gallery`, optional port). */
type DemoFlags = Omit<DemoOptions, 'galleryCount' | 'httpPort' | 'backend'> & {
  gallery: number;
  httpPort?: number;
  backend?: BackendRequest;
  verbose?: boolean;
};

function backendOption(value: string): BackendRequest {
  try {
    return parseBackendRequest(value);
  } catch (error) {
    throw new InvalidArgumentError(`--backend: ${(error as Error).message}.`);
  }
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'Run the whole loop on this machine: a real Kafka broker (KAFKA_BROKERS, else Docker, else an embedded Kafka 3.9 broker on Java 17 + Maven; KAFKA_BROKER_SOURCE=embedded forces the last), the acft daemon and the hospital simulator; stop after --labels labels, run random selection for as many labels, and write demo-output/report.html. Ctrl-C stops everything cleanly.',
    )
    .option(
      '--labels <n>',
      'stop once a model version is trained with this many labels',
      intOption('--labels', 1),
      300,
    )
    .option('--b <n>', 'labels asked for per fine-tuning window', intOption('--b', 1), 20)
    .option('--m <n>', 'patches per candidate', intOption('--m', 1), 8)
    .option('--epochs <n>', 'epochs per fine-tuning window', intOption('--epochs', 1), 3)
    .option('--rate <n>', 'candidates streamed per second', numberOption('--rate', 0.1), 50)
    .option('--candidates <n>', 'candidates streamed in all', intOption('--candidates', 1), 3000)
    .option(
      '--answer-delay-ms <ms>',
      "the simulated radiologist's answer delay",
      intOption('--answer-delay-ms'),
      200,
    )
    .option(
      '--eval-size <n>',
      'candidates in the evaluation set (validation split)',
      intOption('--eval-size', 10),
      1000,
    )
    .option(
      '--seed <n>',
      'seed of the task, stream, selection, training and the baseline',
      intOption('--seed'),
      1,
    )
    .option('--out <dir>', 'where report.html, demo.json and the run folder go', 'demo-output')
    .option(
      '--http-port <port>',
      "the daemon's /metrics port (default: 9464 if free, else any free port; 0: any free port)",
      intOption('--http-port'),
    )
    .option(
      '--backend <name>',
      'tfjs backend: auto|tensorflow-gpu|tensorflow|wasm|cpu (default: $ACFT_BACKEND, else auto)',
      backendOption,
    )
    .option('--m0 <dir>', 'the pre-trained model M0, a tfjs LayersModel directory (default: the bundled one)')
    .option('--no-baseline', 'skip the random-selection baseline')
    .option('--gallery <n>', 'candidates at each end of the gallery', intOption('--gallery', 1), 6)
    .option(
      '--max-minutes <n>',
      'stop waiting for the labels after this long and report what there is',
      numberOption('--max-minutes', 0.5),
      20,
    )
    .option('--verbose', 'print the cause of an error too')
    .action(async (flags: DemoFlags) => {
      let backend = flags.backend;
      if (backend === undefined) {
        try {
          backend = parseBackendRequest(process.env['ACFT_BACKEND']?.trim() || 'auto');
        } catch (error) {
          throw new InvalidArgumentError(`ACFT_BACKEND: ${(error as Error).message}.`);
        }
      }
      if (flags.httpPort !== undefined && flags.httpPort > 65535) {
        throw new InvalidArgumentError(`--http-port must be 0 to 65535, got ${flags.httpPort}.`);
      }
      const ui = new ProgressLine();
      const controller = new AbortController();
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          ui.log(`${signal} again: exiting now.`);
          process.exit(130);
        }
        ui.log(`${signal}: stopping everything (press Ctrl-C again to exit at once)...`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const started = Date.now();
      try {
        const { gallery, verbose: _verbose, httpPort: _port, backend: _backend, ...rest } = flags;
        const { result, reportPath, jsonPath } = await runDemo(
          {
            ...rest,
            httpPort: flags.httpPort,
            backend,
            galleryCount: gallery,
          },
          ui,
          controller.signal,
        );
        const last = result.daemonCurve.at(-1);
        const base = result.baseline?.curve.at(-1);
        ui.log(
          `Done in ${((Date.now() - started) / 1000).toFixed(0)} s: ${result.versions.length} model versions; evaluation AUC ${last ? last.auc.toFixed(3) : 'n/a'} after ${last?.labels ?? 0} labels${base ? ` (random selection: ${base.auc.toFixed(3)} after ${base.labels})` : ''}.`,
        );
        ui.log(`Report: ${reportPath}`);
        ui.log(`Numbers: ${jsonPath}`);
      } catch (error) {
        if (error instanceof DemoInterruptedError) {
          ui.log('Interrupted: the simulator, the daemon and the broker are stopped; no report was written.');
          process.exitCode = 130;
          return;
        }
        if (error instanceof DemoError) {
          console.error(`acft demo: ${error.message}`);
          if (flags.verbose === true && error.cause !== undefined) console.error(error.cause);
          process.exitCode = 1;
          return;
        }
        throw error;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
