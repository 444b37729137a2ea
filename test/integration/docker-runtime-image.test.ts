/**
 * The runtime image without a Docker engine: its /app is assembled from the runtime stage's COPY
 * instructions of docker/Dockerfile (the files they copy, from this checkout's build), and tensormemd
 * is started from there with the arguments and environment of the Dockerfile's CMD, compose's
 * tensormemd service and the DaemonSet, with only what needs a GPU or root changed (the host
 * backend, the socket folder, ephemeral ports). Each must start, answer the image's HEALTHCHECK
 * (docker/healthcheck.js as the image runs it) and the DaemonSet's probe paths, and serve its status page.
 */
import { ChildProcess, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/daemon-process';
import { spawnTied } from '../helpers/tied-spawn';

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (pending === '' && line === '')) continue;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) continue;
    const [keyword, ...rest] = pending.split(/\s+/);
    result.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') });
    pending = '';
  }
  return result;
}

const dockerfile = instructions(readFileSync(join(ROOT, 'docker', 'Dockerfile'), 'utf8'));

function stage(name: string): Instruction[] {
  const start = dockerfile.findIndex((i) => i.keyword === 'FROM' && new RegExp(`\\bAS\\s+${name}$`, 'i').test(i.args));
  const end = dockerfile.findIndex((i, index) => index > start && i.keyword === 'FROM');
  return dockerfile.slice(start, end < 0 ? undefined : end);
}

/** Where the build and deps stages keep the checkout (their WORKDIR). */
const BUILD_WORKDIR = stage('build').find((i) => i.keyword === 'WORKDIR')!.args;
const runtime = stage('runtime');
const APP = runtime.find((i) => i.keyword === 'WORKDIR')!.args;

let image: string;
let socketDir: string;
let child: ChildProcess | undefined;

/** Builds <image>/app from the runtime stage's COPY instructions; node_modules is linked, the rest copied. */
function assembleApp(root: string): void {
  for (const copy of runtime.filter((i) => i.keyword === 'COPY')) {
    const words = copy.args.split(/\s+/);
    const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
    const [source, destination] = words.filter((word) => !word.startsWith('--'));
    if (from === 'node') continue; // the node binary: this one runs the test
    const relative = from ? source.replace(new RegExp(`^${BUILD_WORKDIR}/`), '') : source;
    expect(relative.startsWith('/'), `COPY ${copy.args}: a path outside the build stage's ${BUILD_WORKDIR}`).toBe(false);
    const target = join(root, destination.startsWith('/') ? destination : join(APP, destination));
    mkdirSync(dirname(target), { recursive: true });
    if (relative === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), target);
    else cpSync(join(ROOT, relative), target, { recursive: true });
  }
}

interface Started {
  healthAddress: string;
  metricsAddress: string;
  socket: string;
}

/** Starts the image's tensormemd with `args`, GPU, root and fixed ports swapped for what runs here. */
async function startInImage(args: string[], env: Record<string, string>): Promise<Started> {
  const local = args.map((arg) =>
    arg === 'cuda' ? 'host' : arg.replace(/^unix:\/run\/tensormem\//, `unix:${socketDir}/`).replace(/^0\.0\.0\.0:8081$/, '127.0.0.1:0'),
  );
  const entrypoint = JSON.parse(runtime.find((i) => i.keyword === 'ENTRYPOINT')!.args) as string[];
  expect(entrypoint[0]).toBe('node');
  // The image's own default metrics address is the container's loopback; here it must not clash.
  const flags = [...local, '--emulated-device', '2G', '--metrics-listen', '127.0.0.1:0', '--log-level', 'info'];
  child = spawnTied(process.execPath, [join(image, entrypoint[1]), ...flags], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...imageEnv(), ...env } });
  const started = child;
  const lines: string[] = [];
  return new Promise<Started>((resolve, reject) => {
    createInterface({ input: started.stderr! }).on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { event?: string; addresses?: string[]; healthAddress?: string; metricsAddress?: string };
        if (entry.event === 'listening') {
          const socket = entry.addresses!.find((address) => address.startsWith('unix:'))!;
          resolve({ healthAddress: entry.healthAddress!, metricsAddress: entry.metricsAddress!, socket });
        }
      } catch {
        // not JSON: an error message, kept for the rejection
      }
    });
    started.once('exit', (code) => reject(new Error(`tensormemd from the image layout exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
}

/** The runtime stage's ENV (TENSORMEM_HEALTH_ADDRESS pointed at this test's socket folder). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of runtime.filter((i) => i.keyword === 'ENV')) {
    for (const match of i.args.matchAll(/(\w+)=(\S+)/g)) env[match[1]] = match[2].replace(/^unix:\/run\/tensormem\//, `unix:${socketDir}/`);
  }
  return env;
}

async function expectServes(started: Started): Promise<void> {
  // The image's HEALTHCHECK: its script, from the image, with the image's environment and no argument.
  const healthcheck = JSON.parse(runtime.find((i) => i.keyword === 'HEALTHCHECK')!.args.replace(/^.*?CMD\s+/, '')) as string[];
  const probe = spawnSync(process.execPath, [join(image, healthcheck[1])], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, ...imageEnv() } });
  expect(probe.status, probe.stdout + probe.stderr).toBe(0);
  expect(probe.stdout).toContain(`tensormem health ${started.socket}: SERVING`);
  for (const path of ['/healthz', '/readyz']) expect((await fetch(`http://${started.healthAddress}${path}`)).status, path).toBe(200);
  const page = await fetch(`http://${started.metricsAddress}/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<html');
}

beforeAll(() => {
  image = mkdtempSync(join(tmpdir(), 'tensormem-image-'));
  socketDir = join(image, 'run', 'tensormem');
  mkdirSync(socketDir, { recursive: true });
  assembleApp(image);
});

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
});

afterAll(() => {
  if (image) rmSync(image, { recursive: true, force: true });
});

describe('the runtime image layout (docker/Dockerfile runtime stage)', () => {
  it("starts with the Dockerfile's CMD, answers its HEALTHCHECK and the probe paths, and serves the status page", async () => {
    const cmd = JSON.parse(runtime.find((i) => i.keyword === 'CMD')!.args) as string[];
    const started = await startInImage(cmd, {});
    await expectServes(started);
  });

  it("starts with compose's tensormemd command and environment", async () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker', 'compose.yaml'), 'utf8'), { merge: true }) as {
      services: { tensormemd: { command: string[]; environment: Record<string, string> } };
    };
    const { command, environment } = compose.services.tensormemd;
    // ${VAR:-default} as Compose expands it with VAR unset.
    const env = Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, value.replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));
    await expectServes(await startInImage(command, env));
  });

  it("starts with the DaemonSet's args and environment", async () => {
    const daemonSet = parseAllDocuments(readFileSync(join(ROOT, 'docker', 'k8s', 'daemonset.yaml'), 'utf8'))
      .map((document) => document.toJS())
      .find((object) => object.kind === 'DaemonSet') as { spec: { template: { spec: { containers: Array<{ name: string; args: string[]; env: Array<{ name: string; value: string }> }> } } } };
    const container = daemonSet.spec.template.spec.containers.find((c) => c.name === 'tensormemd')!;
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    await expectServes(await startInImage(container.args, env));
  });
});
