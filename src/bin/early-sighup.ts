/**
 * Imported first by tensormemd: takes SIGHUP from the process's first moments. Node's default action
 * for SIGHUP ends the process, and loading the daemon's modules takes some 400 ms before main() puts
 * its handlers in: a `systemctl reload` right after `systemctl start` killed the daemon then, and
 * systemd counts an end by SIGHUP as clean, so Restart=on-failure did not bring it back.
 */
let received = false;
const onSighup = (): void => {
  received = true;
};
process.on('SIGHUP', onSighup);

/** Stops holding SIGHUP (the caller's own handler must be in already: main() puts it in once the daemon serves); whether one came meanwhile. */
export function takeEarlySighup(): boolean {
  process.off('SIGHUP', onSighup);
  return received;
}
