// A client process that opens WatchMemory streams and is then stopped (SIGSTOP) by the test, so that
// it reads nothing more (a `tensormemctl top` suspended with Ctrl-Z, a hung dashboard).
// argv: <address> <token> <streams> <interval_ms>; prints "watching" once every stream has had a message.
const { TensormemClient } = require('../../dist/src/client/tensormem-client');

const [address, token, streams, intervalMs] = process.argv.slice(2);
const client = new TensormemClient(address);
let first = 0;
for (let i = 0; i < Number(streams); i++) {
  let seen = false;
  client.watchMemory(
    Number(intervalMs),
    () => {
      if (seen) return;
      seen = true;
      if (++first === Number(streams)) process.stdout.write('watching\n');
    },
    () => undefined,
    token,
  );
}
