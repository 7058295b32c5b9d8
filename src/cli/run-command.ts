/** `acft run`: the streaming daemon. This module owns the process signals. */
import { Command } from 'commander';
import { loadConfig, redactConfig } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { Daemon } from '../daemon/daemon.js';

export function runCommand(): Command {
  return new Command('run')
    .description(
      'Run the ACFT daemon: consume candidates and feedback from Kafka, request labels, fine-tune, publish model versions. Configured by ACFT_* environment variables and an optional JSON file (see the README).',
    )
    .option('--config <path>', 'JSON configuration file (environment variables win over it)')
    .action(async (flags: { config?: string }) => {
      const config = loadConfig(flags.config === undefined ? {} : { file: flags.config });
      const logger = createLogger({
        level: config.log.level,
        redactPaths: config.log.redactPaths,
        sync: true,
      });
      logger.info({ event: 'config', config: redactConfig(config) }, 'configuration loaded');
      const daemon = await Daemon.start({ config, logger });
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            logger.warn({ event: 'forced-exit', signal }, 'second signal: exiting now');
            process.exit(130);
          }
          logger.info({ event: 'signal', signal }, 'shutting down (send the signal again to force)');
          daemon.close().then(resolve, resolve);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      // Everything is closed, checkpointed and committed. A handle a client library leaves behind
      // (kafkajs after a broker outage) must not keep the process alive: the supervisor would see a
      // daemon that does not stop.
      setTimeout(() => process.exit(process.exitCode ?? 0), 3_000).unref();
    });
}
