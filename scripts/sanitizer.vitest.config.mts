// vitest config for scripts/sanitizer-check.sh: the repository's config, with the sanitizer runtime
// (SANITIZER_PRELOAD) preloaded only into the processes started from here on (the test forks and the
// daemons they start), not into vitest's own main process, which ThreadSanitizer crashed.
import config from '../vitest.config.mts';

if (process.env.SANITIZER_PRELOAD) process.env.LD_PRELOAD = process.env.SANITIZER_PRELOAD;

export default config;
