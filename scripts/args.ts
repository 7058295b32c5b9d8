/**
 * The command lines of the benchmark scripts, parsed by commander as the `acft` CLI's are (with its
 * option parsers, src/cli/options.ts): `--help` prints the options, and a bad value or flag is one
 * sentence on stderr and exit code 2.
 */
import { Command, CommanderError } from 'commander';

export type Parsed<T> = { ok: true; options: T } | { ok: false; exitCode: number };

/**
 * Parses `argv` (the arguments after the script) with `program`, then `resolve`s its option values
 * into the script's options; `resolve` refuses a combination with `program.error(...)`.
 */
export function parseCommandLine<T>(
  program: Command,
  argv: readonly string[],
  resolve: (values: Record<string, unknown>) => T,
): Parsed<T> {
  program.exitOverride().showHelpAfterError('(--help lists the options)');
  try {
    program.parse([...argv], { from: 'user' });
    return { ok: true, options: resolve(program.opts()) };
  } catch (error) {
    if (error instanceof CommanderError) return { ok: false, exitCode: error.exitCode === 0 ? 0 : 2 };
    throw error;
  }
}

export { Command };
