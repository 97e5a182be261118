import { CLI_USAGE, parseCliArgs } from './cli-options';
import { startSimulator } from './simulator-server';

async function main(argv: readonly string[]): Promise<void> {
  let command;
  try {
    command = parseCliArgs(argv);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(CLI_USAGE);
    process.exitCode = 2;
    return;
  }
  if (command.kind === 'help') {
    console.log(CLI_USAGE);
    return;
  }

  const simulator = await startSimulator(command.options);
  console.log(`provider-simulator listening on ${simulator.url} (OpenAI base URL ${simulator.baseUrl})`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`provider-simulator: ${signal} received, shutting down`);
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
