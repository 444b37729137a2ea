#!/usr/bin/env node
/** tensormemd: the daemon. `--help` lists every flag. */
// First, before the modules that take time to load: a SIGHUP from now on is not the end of the process.
import { takeEarlySighup } from './early-sighup';
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
  // A second SIGTERM or SIGINT (either one) during the drain cuts it short (Daemon.cutDrain): the
  // daemon still frees every lease, logs "stopped" and exits as a drain does. (Handlers registered
  // with once() let a second SIGTERM kill the daemon mid-drain by the default action, with no
  // "stopped" line, and ignored a Ctrl-C after a SIGTERM.)
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let pendingSignal: string | undefined;
  let pendingCut: string | undefined;
  let draining = false;
  // 1 once the daemon must be restarted (Daemon.fatal: a lost GPU context), whatever ends the drain.
  let exitCode = 0;
  const stop = (signal: string) => {
    if (!daemon) {
      if (pendingSignal !== undefined) pendingCut ??= signal;
      pendingSignal ??= signal;
      return;
    }
    if (draining) return daemon.cutDrain(signal);
    draining = true;
    daemon.shutdown(signal).then(
      () => process.exit(exitCode),
      (error) => {
        process.stderr.write(`tensormemd: shutdown failed: ${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    daemon = await startDaemon(config);
  } catch (error) {
    process.stderr.write(`tensormemd: ${(error as Error).message}\n`);
    process.exit(1);
  }
  // A SIGHUP while the daemon started (from the moment this process's modules began to load: early-sighup.ts
  // held it until now) rereads the file now that it serves: `systemctl reload` right after `start` must not
  // be lost, nor end the process. This handler goes in before that one comes out, so none falls between.
  const served = daemon;
  // A reload logs its own outcome (tenants_reloaded, tenants_reload_failed): nothing to wait for here.
  process.on('SIGHUP', () => void served.reloadTenants());
  if (takeEarlySighup() && !pendingSignal) void daemon.reloadTenants();
  if (pendingSignal) stop(pendingSignal);
  if (pendingCut) stop(pendingCut);
  void daemon.fatal.then((reason) => {
    exitCode = 1;
    stop(reason);
  });
}

void main();
