/**
 * Preloaded into a daemon under test (NODE_OPTIONS=--require): on SIGUSR2 it takes a libuv thread-pool
 * thread and holds it until the test opens the FIFO named by TENSORMEM_TEST_HOLD_FIFO for writing. An
 * open(2) of a FIFO for reading blocks until a writer comes, and fs.open runs it on the pool, so with
 * UV_THREADPOOL_SIZE=1 every copy the daemon queues after it waits, for as long as the test wants, on a
 * machine of any speed. `<fifo>.held` appears once the hold is queued.
 */
const fs = require('node:fs');

const fifo = process.env.TENSORMEM_TEST_HOLD_FIFO;
if (fifo) {
  process.on('SIGUSR2', () => {
    fs.open(fifo, 'r', (error, fd) => {
      if (!error) fs.close(fd, () => {});
    });
    fs.writeFileSync(`${fifo}.held`, '');
  });
}
