#!/usr/bin/env node
/** The `acft` command line. */
import { Command } from 'commander';
import { benchCommand } from './bench-command.js';
import { demoCommand } from './demo-command.js';
import { pretrainCommand } from './pretrain-command.js';
import { simulateCommand } from './simulate-command.js';
import { runCommand } from './run-command.js';
import { packageVersion } from './paths.js';

const program = new Command('acft')
  .description('Active, continual fine-tuning of a CAD model from a Kafka stream of candidates.')
  .version(packageVersion())
  .addCommand(benchCommand())
  .addCommand(pretrainCommand())
  .addCommand(simulateCommand())
  .addCommand(runCommand())
  .addCommand(demoCommand())
  .showHelpAfterError();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  console.error(`acft: ${(error as Error).message}`);
  process.exitCode = 1;
}
