#!/usr/bin/env node
/** tensormemd: the daemon. `--help` lists every flag. */
import { commandLineOnlyRequest, loadConfig } from '../config/config';
import { helpText } from '../config/flags';
import { startDaemon } from '../daemon';
import { packageVersion } from '../package-root';

async function main(): Promise<void> {
  // Before the environment and the config file are read: a bad one must not refuse the help its message points to.
  const request = commandLineOnlyRequest(process.argv.slice(2));
  if (request === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (request === 'version') {
    process.stdout.write(`tensormemd ${packageVersion()}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`tensormemd: ${(error as Error).message}\nRun tensormemd --help for the flags.\n`);
    process.exit(2);
  }
  // Signal handlers go in before the daemon starts: a SIGTERM that arrives while it is still starting
  // (or right after its "listening" line) drains it once it is up, instead of killing it mid-start.
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let pendingSignal: string | undefined;
  const stop = (signal: string) => {
    if (!daemon) {
      pendingSignal ??= signal;
      return;
    }
    daemon.shutdown(signal).then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`tensormemd: shutdown failed: ${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => daemon?.reloadTenants());
  try {
    daemon = await startDaemon(config);
  } catch (error) {
    process.stderr.write(`tensormemd: ${(error as Error).message}\n`);
    process.exit(1);
  }
  if (pendingSignal) stop(pendingSignal);
}

void main();
