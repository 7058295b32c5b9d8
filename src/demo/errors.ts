/**
 * What a newcomer can hit when running the demo, each as one sentence that says what to do. The
 * underlying error stays attached as the cause (printed with --verbose).
 */

/** An error whose message is meant for the person at the terminal. */
export class DemoError extends Error {
  override readonly name = 'DemoError';
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** Why no broker could be had: Java, Maven, Docker and KAFKA_BROKERS, in the words of the fix. */
export function brokerUnavailable(error: unknown, env: NodeJS.ProcessEnv = process.env): DemoError {
  const message = text(error);
  if (env['KAFKA_BROKERS']?.trim()) {
    return new DemoError(
      `The Kafka brokers in KAFKA_BROKERS (${env['KAFKA_BROKERS']}) could not be used (${firstLine(message)}): check that they are reachable, or unset KAFKA_BROKERS to let the demo start its own broker.`,
      { cause: error },
    );
  }
  if (/Java 17\+ is needed|spawn java ENOENT/.test(message)) {
    return new DemoError(
      'No Kafka broker: the demo starts an embedded Kafka broker with Java, and `java` was not found; install Java 17 (e.g. `apt-get install openjdk-17-jre-headless`) and Maven, or start Docker, or set KAFKA_BROKERS=host:port to use your own Kafka.',
      { cause: error },
    );
  }
  if (/Maven \(`mvn`\) is needed/.test(message)) {
    return new DemoError(
      'No Kafka broker: the embedded broker needs Maven once to download the Kafka jars, and `mvn` was not found; install Maven (e.g. `apt-get install maven`), or start Docker, or set KAFKA_BROKERS=host:port to use your own Kafka.',
      { cause: error },
    );
  }
  if (/Maven could not resolve/.test(message)) {
    return new DemoError(
      'No Kafka broker: Maven could not download the Kafka jars from Maven Central (are you offline or behind a proxy?); run `npm run kafka:prepare` to see why, or set KAFKA_BROKERS=host:port to use your own Kafka.',
      { cause: error },
    );
  }
  return new DemoError(
    `No Kafka broker could be started (${firstLine(message)}): install Java 17 and Maven for the embedded broker, or start Docker, or set KAFKA_BROKERS=host:port to use your own Kafka.`,
    { cause: error },
  );
}

/** The brokers were had but do not answer. */
export function brokerUnreachable(error: unknown, brokers: string[], fromEnv: boolean): DemoError {
  return new DemoError(
    fromEnv
      ? `The Kafka brokers in KAFKA_BROKERS (${brokers.join(',')}) do not answer (${firstLine(text(error))}): check that they run and are reachable from here, or unset KAFKA_BROKERS to let the demo start its own broker.`
      : `The Kafka broker the demo started at ${brokers.join(',')} does not answer (${firstLine(text(error))}): see broker.log in the run folder.`,
    { cause: error },
  );
}

/** Why the daemon did not start: the port, the model, the broker, or a setting. */
export function daemonFailed(
  error: unknown,
  ctx: { port: number; m0Path: string; brokers: string[] },
): DemoError {
  const e = error as { name?: string; code?: string } | undefined;
  const message = text(error);
  if (e?.name === 'HttpServerStartError' && e.code === 'EADDRINUSE') {
    return new DemoError(
      `Port ${ctx.port} is already in use (the daemon's /metrics): pass --http-port 0 for any free port, or another port.`,
      { cause: error },
    );
  }
  if (e?.name === 'HttpServerStartError') {
    return new DemoError(`${firstLine(message)}; pass --http-port 0 for any free port.`, { cause: error });
  }
  if (e?.name === 'ModelArtifactError') {
    return new DemoError(
      `The pre-trained model at ${ctx.m0Path} could not be loaded (${firstLine(message)}): pass --m0 a tfjs LayersModel directory (model.json and its weights), or leave --m0 out to use the bundled M0.`,
      { cause: error },
    );
  }
  if (e?.name === 'ConfigError') {
    return new DemoError(`A demo setting is invalid: ${firstLine(message)}.`, { cause: error });
  }
  if (typeof e?.name === 'string' && e.name.startsWith('KafkaJS')) {
    return new DemoError(
      `The Kafka broker at ${ctx.brokers.join(',')} did not answer (${firstLine(message)}): check that it runs, or unset KAFKA_BROKERS to let the demo start its own.`,
      { cause: error },
    );
  }
  return new DemoError(`The acft daemon did not start: ${firstLine(message)}.`, { cause: error });
}
