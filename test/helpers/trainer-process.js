// A trainer: opens a lease with the typed client (compiled, dist/), reaches a stage, prints
// "stage <name> <lease_id>" and then waits to be killed. Used by fault tests.
// argv: address tenantToken bytes releaseOnDisconnect(0|1) [stage]
//   stage: allocated (default) | opened | writing | streaming | reading | waiting | workspace | stopped
//   (streaming: rewrites the array over one WriteArray stream as fast as the daemon takes it, so that
//   a kill lands while the daemon is copying a chunk)
//   (stopped: stops its keep-alive cleanly, exits 20 ms later, and prints its stage just before)
const { Metadata } = require('@grpc/grpc-js');
const { TensormemClient } = require('../../dist/src/client/tensormem-client');

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const [address, tenantToken, bytesText, release, stage = 'allocated'] = process.argv.slice(2);
  const bytes = Number(bytesText);
  const client = new TensormemClient(address);
  const lease = await client.openLease({ tenantToken: tenantToken || undefined, clientName: `trainer-${process.pid}`, ttlSeconds: 2 });
  lease.startKeepAlive(200, { releaseOnDisconnect: release === '1' });
  const say = () => process.stdout.write(`stage ${stage} ${lease.leaseId}\n`);
  const md = new Metadata();
  md.set('authorization', `Bearer ${lease.token}`);
  if (stage === 'opened') return say();
  if (stage === 'stopped') {
    await sleep(300);
    lease.stopKeepAlive();
    await sleep(20);
    say();
    process.exit(0);
  }
  if (stage === 'workspace') {
    // Inside a workspace cycle: a learned workspace, entered, with arrays attached.
    const ws = await lease.createWorkspace('TRAIN_WS', { initial_size: bytes, learning_policy: 'LEARNING_POLICY_NONE' });
    await lease.enterWorkspace(ws.workspace_id);
    for (let i = 0; i < 8; i++) await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [Math.floor(bytes / 16)] });
    return say();
  }
  if (stage === 'waiting') {
    lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], waitForMemory: true, deadlineMs: 60_000 }).catch(() => {});
    await sleep(300);
    return say();
  }
  const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes] });
  if (stage === 'writing') {
    // A slow writer: a chunk every 20 ms, killed half way.
    const stream = client.arrays.WriteArray(md, () => {});
    stream.write({ header: { array_id: array.array_id, offset: 0 } });
    const chunk = Buffer.alloc(256 * 1024, 5);
    let sent = 0;
    const timer = setInterval(() => {
      if (sent + chunk.length > bytes) return clearInterval(timer);
      stream.write({ chunk });
      sent += chunk.length;
      if (sent === 4 * chunk.length) say();
    }, 20);
    return;
  }
  if (stage === 'streaming') {
    const stream = client.arrays.WriteArray(md, () => {});
    stream.on('error', () => {});
    stream.write({ header: { array_id: array.array_id, offset: 0 } });
    const chunk = Buffer.alloc(1024 * 1024, 6);
    let sent = 0;
    const pump = () => {
      while (sent + chunk.length <= bytes) {
        sent += chunk.length;
        if (sent === chunk.length) stream.write({ chunk }, say);
        else if (!stream.write({ chunk })) return stream.once('drain', pump);
      }
    };
    pump();
    return;
  }
  await lease.write(array.array_id, Buffer.alloc(bytes, 7));
  if (stage === 'reading') {
    // A reader that takes the first message and then stops reading.
    const stream = client.arrays.ReadArray({ array_id: array.array_id, offset: 0, length: 0 }, md);
    stream.once('data', () => {
      stream.pause();
      say();
    });
    return;
  }
  say();
}

main()
  .then(() => setInterval(() => {}, 1 << 30))
  .catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
