// Preloaded (node --require) into a process whose peak memory a test measures: at exit it writes its
// VmHWM (the most resident memory it held, in KiB, from /proc/self/status) into $PEAK_RSS_FILE.
const { readFileSync, writeFileSync } = require('node:fs');

const target = process.env.PEAK_RSS_FILE;
if (target) {
  process.on('exit', () => {
    const peak = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    writeFileSync(target, peak ? peak[1] : 'none');
  });
}
