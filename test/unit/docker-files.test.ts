/**
 * The container files, checked without a Docker engine: docker/Dockerfile (stages, non-root user,
 * HEALTHCHECK, every COPY source present), docker/compose.yaml (GPU reservation, ipc: host, the daemon
 * and the tests service; also `docker-compose config` / `docker compose config` where one is
 * installed), docker/k8s/daemonset.yaml (GPU nodes, no GPU request, probes on the health port, the
 * socket on a hostPath). Every tensormemd flag and TENSORMEM_* variable they use must be one tensormemd
 * accepts: they are parsed by the daemon's own loadConfig.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { FLAGS, envName } from '../../src/config/flags';

const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions, continuation lines joined, comments and parser directives dropped. */
function dockerfileInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return;
    if (pending === '') startLine = index + 1;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      const [keyword, ...rest] = pending.split(/\s+/);
      instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: startLine });
      pending = '';
    }
  });
  return instructions;
}

/** A JSON-array (exec form) argument list; shell form is refused so the checks below stay exact. */
function execForm(instruction: Instruction): string[] {
  const args = instruction.args.replace(/^CMD\s+/, '');
  expect(args.startsWith('['), `line ${instruction.line}: ${instruction.keyword} should use the exec (JSON) form`).toBe(true);
  return JSON.parse(args) as string[];
}

/** tensormemd accepts these arguments and environment (throws naming the flag otherwise). */
function expectTensormemdAccepts(args: string[], env: Record<string, string> = {}, where = ''): void {
  for (const name of Object.keys(env)) {
    expect(FLAGS.map(envName), `${where}: ${name} is not a tensormemd variable`).toContain(name);
  }
  expect(() => loadConfig(args, env), `${where}: tensormemd ${args.join(' ')}`).not.toThrow();
}

const dockerfile = dockerfileInstructions(read('docker/Dockerfile'));
const stages = dockerfile.filter((i) => i.keyword === 'FROM').map((i) => ({ ...i, name: /\bAS\s+(\S+)$/i.exec(i.args)?.[1] }));
const argDefaults = new Map(dockerfile.filter((i) => i.keyword === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=', 2) as [string, string]));
const expand = (text: string) => text.replace(/\$\{(\w+)\}/g, (_, name: string) => argDefaults.get(name) ?? `\${${name}}`);

/** The instructions of one stage. */
function stage(name: string): Instruction[] {
  const start = dockerfile.findIndex((i) => i.keyword === 'FROM' && new RegExp(`\\bAS\\s+${name}$`, 'i').test(i.args));
  expect(start, `stage ${name}`).toBeGreaterThanOrEqual(0);
  const end = dockerfile.findIndex((i, index) => index > start && i.keyword === 'FROM');
  return dockerfile.slice(start, end < 0 ? undefined : end);
}

describe('docker/Dockerfile', () => {
  it('builds on an nvidia/cuda devel image, checks the addon has CUDA, and runs the unit tests', () => {
    const build = stage('build');
    expect(expand(build[0].args)).toMatch(/^nvidia\/cuda:\d+\.\d+\.\d+-devel-ubuntu\d+\.\d+ AS build$/);
    const runs = build.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((run) => run.includes('npm run build:native') && run.includes('buildInfo()') && run.includes('b.cuda'))).toBe(true);
    expect(runs.some((run) => /npm run build:ts/.test(run))).toBe(true);
    expect(runs.some((run) => /vitest run test\/unit/.test(run))).toBe(true);
  });

  it('ends in a small runtime image with Node 20 that runs as a non-root user, with a gRPC HEALTHCHECK', () => {
    const runtime = stage('runtime');
    expect(expand(runtime[0].args)).toMatch(/^nvidia\/cuda:\d+\.\d+\.\d+-base-ubuntu\d+\.\d+ AS runtime$/);
    expect(expand(stage('node')[0].args)).toMatch(/^node:20[.\-]/);
    expect(runtime.some((i) => i.keyword === 'COPY' && i.args === '--from=node /usr/local/bin/node /usr/local/bin/node')).toBe(true);
    // No compiler, no devDependencies: node_modules come from the pruned stage.
    expect(runtime.some((i) => i.keyword === 'COPY' && /^--from=deps \S+node_modules /.test(i.args))).toBe(true);
    expect(stage('deps').some((i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.args))).toBe(true);

    const users = runtime.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users.at(-1)).toBe('tensormem');
    expect(runtime.some((i) => i.keyword === 'RUN' && /useradd --system --uid 10001\b/.test(i.args))).toBe(true);

    const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK')!;
    expect(healthcheck).toBeDefined();
    expect(healthcheck.args).toMatch(/--interval=\d+s .*CMD \["node", "\/app\/docker\/healthcheck\.js"\]/);
    expect(runtime.some((i) => i.keyword === 'COPY' && i.args === 'docker/healthcheck.js ./docker/healthcheck.js')).toBe(true);
    const env = runtime.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/NVIDIA_DRIVER_CAPABILITIES=compute,utility/);
    expect(env).toMatch(/TENSORMEM_HEALTH_ADDRESS=unix:\/run\/tensormem\/tensormemd\.sock/);
  });

  it('starts tensormemd with flags it accepts, listening where the HEALTHCHECK asks', () => {
    const runtime = stage('runtime');
    const entrypoint = execForm(runtime.find((i) => i.keyword === 'ENTRYPOINT')!);
    expect(entrypoint).toEqual(['node', '/app/dist/src/bin/tensormemd.js']);
    const cmd = execForm(runtime.find((i) => i.keyword === 'CMD')!);
    expectTensormemdAccepts(cmd, {}, 'Dockerfile CMD');
    expect(loadConfig(cmd, {}).listen).toContain('unix:/run/tensormem/tensormemd.sock');
    expect(loadConfig(cmd, {}).healthListen).toBe('0.0.0.0:8081');
    expect(runtime.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes('8081'))).toBe(true);
  });

  it('copies only files that exist and that the .dockerignore keeps, from stages that exist', () => {
    const ignored = read('docker/Dockerfile.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const stageNames = stages.map((s) => s.name);
    for (const copy of dockerfile.filter((i) => i.keyword === 'COPY')) {
      const words = copy.args.split(/\s+/);
      const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((word) => !word.startsWith('--'));
      const sources = paths.slice(0, -1);
      if (from) {
        expect(stageNames.includes(from) || from === 'node', `line ${copy.line}: --from=${from} names no stage`).toBe(true);
        continue;
      }
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `line ${copy.line}: COPY ${source}: no such file in the repository`).toBe(true);
        expect(ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `line ${copy.line}: ${source} is excluded by the .dockerignore`).toBe(false);
      }
    }
  });

  it('gives the build stage every repository file that the tests it runs read (or the build fails)', () => {
    const build = stage('build');
    const ignored = read('docker/Dockerfile.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const copied = build
      .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .filter((word) => !word.startsWith('--'));
    // Made by the stage's RUN steps: npm ci, build:native, build:ts.
    const made = ['node_modules', 'build', 'dist'];
    const run = build.find((i) => i.keyword === 'RUN' && /vitest run/.test(i.args))!;
    const suites = run.args.replace(/^.*vitest run\s+/, '').split(/\s+/).filter((word) => word.startsWith('test/'));
    expect(suites).toEqual(['test/unit', 'test/conformance']);
    const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);
    for (const suite of suites) {
      for (const file of readdirSync(join(ROOT, suite)).filter((name) => name.endsWith('.test.ts'))) {
        const text = read(join(suite, file));
        // Repository paths as the tests name them: join of ROOT and literals, this file's read helper, join of __dirname and ../../PATH.
        const paths = [
          ...[...text.matchAll(/join\(ROOT((?:,\s*'[^'*]+')+)/g)].map((m) => [...m[1].matchAll(/'([^']+)'/g)].map((s) => s[1]).join('/')),
          ...[...text.matchAll(/\bread\('([^']+)'\)/g)].map((m) => m[1]),
          ...[...text.matchAll(/join\(__dirname, '\.\.\/\.\.\/([^']+)'\)/g)].map((m) => m[1]),
        ];
        for (const path of paths) {
          if (made.some((folder) => under(path, folder))) continue;
          expect(copied.some((source) => under(path, source)), `${suite}/${file} reads ${path}, which the build stage does not COPY`).toBe(true);
          expect(ignored.some((pattern) => under(path, pattern) || under(pattern, path)), `${suite}/${file} reads ${path}, which the .dockerignore excludes`).toBe(false);
        }
      }
    }
  });

  it('has a test stage that runs the integration and GPU suites', () => {
    const test = stage('test');
    expect(test[0].args).toBe('runtime AS test');
    expect(execForm(test.find((i) => i.keyword === 'CMD')!)).toEqual(['test/integration', 'test/gpu']);
    expect(test.filter((i) => i.keyword === 'USER').at(-1)!.args).toBe('tensormem');
  });

  it("builds, with each `docker build` its header comment shows, the stage that line names (without --target: the last stage)", () => {
    const commands = read('docker/Dockerfile')
      .split('\n')
      .filter((line) => /^#\s+docker build /.test(line));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      const built = /--target\s+(\S+)/.exec(command)?.[1] ?? stages.at(-1)!.name!;
      // The line's own words for what it builds: its image tag and its trailing comment.
      const said = [/-t\s+(\S+)/.exec(command)?.[1] ?? '', command.replace(/^#\s+docker build [^#]*/, '')].join(' ');
      const named = stages.map((s) => s.name!).filter((name) => new RegExp(`\\b${name}\\b`).test(said));
      expect(named, command).toEqual([built]);
    }
  });

  it('gives the test stage every program the suites it runs start (the runtime image has node only)', () => {
    const test = stage('test');
    // nvidia/cuda base (Ubuntu): its Essential packages (coreutils, util-linux, diffutils, bash, dash) are
    // there; anything else the stage installs.
    const inBase = ['sh', 'bash', 'mkfifo', 'stat', 'prlimit', 'flock', 'unshare'];
    const installed = test
      .filter((i) => i.keyword === 'RUN')
      .flatMap((i) => [...i.args.matchAll(/apt-get install ((?:-\S+\s+)*)([^&]+)/g)].flatMap((m) => m[2].trim().split(/\s+/)));
    const linked = test.filter((i) => i.keyword === 'RUN').flatMap((i) => [...i.args.matchAll(/ln -s \S+ \/usr\/local\/bin\/(\S+)/g)].map((m) => m[1]));
    const suites = execForm(test.find((i) => i.keyword === 'CMD')!).concat('test/helpers');
    const programs = new Map<string, string>();
    for (const suite of suites) {
      for (const file of readdirSync(join(ROOT, suite)).filter((name) => name.endsWith('.ts'))) {
        for (const match of read(join(suite, file)).matchAll(/\b(?:spawnSync|spawn|spawnTied|execFileSync|execFile)\('([\w.+-]+)'/g)) programs.set(match[1], `${suite}/${file}`);
      }
    }
    expect(programs.size).toBeGreaterThan(3);
    for (const [program, where] of programs) {
      expect([...inBase, ...installed, ...linked], `${where} runs ${program}, which the test stage does not install`).toContain(program);
    }
  });
});

type ComposeService = {
  build?: { context: string; dockerfile: string; target: string };
  command?: string[];
  environment?: Record<string, string>;
  ipc?: string;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver?: string; count?: string | number; capabilities?: string[] }> } } };
};

describe('docker/compose.yaml', () => {
  const compose = parseYaml(read('docker/compose.yaml'), { merge: true }) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
  const { tensormemd, tests } = compose.services;
  /** A service's environment as Compose gives it with the host's variables unset (${VAR:-default} is default). */
  const composeEnv = (service: ComposeService) => Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, value.replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));

  it('reserves the GPUs and shares the host IPC namespace for both services', () => {
    for (const [name, service] of Object.entries({ tensormemd, tests })) {
      const devices = service.deploy?.resources?.reservations?.devices ?? [];
      expect(devices, name).toHaveLength(1);
      expect(devices[0].driver).toBe('nvidia');
      expect(devices[0].capabilities).toContain('gpu');
      expect(service.ipc, name).toBe('host');
    }
  });

  it('builds both services from docker/Dockerfile stages and runs tensormemd with flags it accepts', () => {
    const stageNames = stages.map((s) => s.name);
    for (const service of [tensormemd, tests]) {
      expect(existsSync(join(ROOT, 'docker', service.build!.context, service.build!.dockerfile))).toBe(true);
      expect(stageNames).toContain(service.build!.target);
    }
    expect(tensormemd.build!.target).toBe('runtime');
    expect(tests.build!.target).toBe('test');
    const env = composeEnv(tensormemd);
    expectTensormemdAccepts(tensormemd.command!, env, 'compose tensormemd');
    expect(loadConfig(tensormemd.command!, {}).listen).toEqual(['unix:/run/tensormem/tensormemd.sock']);
  });

  it('runs the tests service against the healthy daemon over the shared socket volume', () => {
    expect(tests.depends_on).toEqual({ tensormemd: { condition: 'service_healthy' } });
    expect(tensormemd.healthcheck!.test).toEqual(['CMD', 'node', '/app/docker/healthcheck.js', 'unix:/run/tensormem/tensormemd.sock']);
    expect(tensormemd.volumes).toContain('tensormem-run:/run/tensormem');
    expect(tests.volumes).toContain('tensormem-run:/run/tensormem');
    expect(Object.keys(compose.volumes)).toContain('tensormem-run');
    expect(tests.environment!.TENSORMEM_TEST_DAEMON).toBe('unix:/run/tensormem/tensormemd.sock');
    expect(tests.command).toEqual(['test/integration', 'test/gpu']);
  });

  it('gives the daemon more time to stop than its longest drain (twice --shutdown-timeout) before SIGKILL', () => {
    // daemon.ts: calls in flight get --shutdown-timeout, and the copies and data plane transfers they
    // left up to the same again; Docker kills the container when stop_grace_period (default 10s) passes.
    const service = tensormemd as ComposeService & { stop_grace_period?: string };
    const env = composeEnv(tensormemd);
    const drainMs = 2 * loadConfig(tensormemd.command!, env).shutdownTimeoutMs;
    const grace = /^(\d+)s$/.exec(service.stop_grace_period ?? '10s');
    expect(grace, `stop_grace_period: ${service.stop_grace_period}`).not.toBeNull();
    expect(Number(grace![1]) * 1000, `stop_grace_period ${service.stop_grace_period} against a drain of up to ${drainMs} ms`).toBeGreaterThan(drainMs);
  });

  const composeTool = [
    ['docker-compose', ['-f', 'docker/compose.yaml', '--profile', 'tests', 'config', '--quiet']],
    ['docker', ['compose', '-f', 'docker/compose.yaml', '--profile', 'tests', 'config', '--quiet']],
  ].find(([command, args]) => spawnSync(command as string, [...(args as string[]).slice(0, (args as string[]).indexOf('-f')), 'version'], { encoding: 'utf8' }).status === 0) as [string, string[]] | undefined;

  it.skipIf(!composeTool)(`is valid for ${composeTool ? composeTool[0] : 'Compose'} config${composeTool ? '' : ' (skipped: neither docker-compose nor the docker compose plugin is installed; .ci/run installs docker-compose)'}`, () => {
    const [command, args] = composeTool!;
    const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });
});

type Container = {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value: string }>;
  ports?: Array<{ name: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
};

describe('docker/k8s/daemonset.yaml', () => {
  const documents = parseAllDocuments(read('docker/k8s/daemonset.yaml'));
  const daemonSet = documents.map((document) => document.toJS()).find((object) => object.kind === 'DaemonSet') as {
    spec: { template: { spec: { nodeSelector: Record<string, string>; tolerations: Array<{ key: string; operator: string; effect: string }>; hostIPC: boolean; containers: Container[]; volumes: Array<{ name: string; hostPath?: { path: string; type: string } }> } } };
  };
  const pod = daemonSet.spec.template.spec;
  const daemon = pod.containers.find((container) => container.name === 'tensormemd')!;
  const daemonEnv = Object.fromEntries((daemon.env ?? []).filter((e) => e.name.startsWith('TENSORMEM_')).map((e) => [e.name, e.value]));

  it('parses, and runs on GPU nodes without requesting a GPU', () => {
    for (const document of documents) expect(document.errors).toEqual([]);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(JSON.stringify(daemon.resources)).not.toMatch(/nvidia\.com\/gpu/);
    expect(pod.hostIPC).toBe(true);
    expect(daemon.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
  });

  it('probes /healthz and /readyz on the port tensormemd --health-listen serves', () => {
    expectTensormemdAccepts(daemon.args!, daemonEnv, 'DaemonSet args');
    const config = loadConfig(daemon.args!, {});
    const healthPort = Number(config.healthListen!.split(':').at(-1));
    const port = daemon.ports!.find((p) => p.name === 'health')!;
    expect(port.containerPort).toBe(healthPort);
    expect(daemon.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(daemon.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'health' });
  });

  it('keeps the daemon inside its memory limit: absolute host caps, --maxphysicalbytes below the limit, request = limit', () => {
    const config = loadConfig(daemon.args!, daemonEnv);
    // Kubernetes quantities in binary units (Ki, Mi, Gi, Ti), as a memory limit is written.
    const quantity = (text: string | undefined) => {
      const match = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(text ?? '');
      expect(match, `memory quantity ${text}`).not.toBeNull();
      return Number(match![1]) * 1024 ** (['Ki', 'Mi', 'Gi', 'Ti'].indexOf(match![2]) + 1);
    };
    const limit = quantity(daemon.resources?.limits?.memory);
    expect(daemon.resources?.requests?.memory).toBe(daemon.resources?.limits?.memory);
    // "% of RAM" (the defaults: --host-maxbytes 25%, --maxphysicalbytes derived from it) is of the node's
    // RAM, os.totalmem() inside a container, not of the container's limit.
    expect(config.hostMaxBytes, 'TENSORMEM_HOST_MAXBYTES').toMatchObject({ kind: 'bytes' });
    expect(config.maxPhysicalBytes, 'TENSORMEM_MAXPHYSICALBYTES').toMatchObject({ kind: 'bytes' });
    const hostMax = (config.hostMaxBytes as { bytes: number }).bytes;
    const physicalMax = (config.maxPhysicalBytes as { bytes: number }).bytes;
    expect(physicalMax).toBeGreaterThan(0); // 0 = no cap
    expect(hostMax).toBeLessThan(physicalMax);
    expect(physicalMax, '--maxphysicalbytes against resources.limits.memory').toBeLessThan(limit);
  });

  it('serves its unix socket from a hostPath that trainers on the node can mount', () => {
    const config = loadConfig(daemon.args!, {});
    const socket = config.listen.find((address) => address.startsWith('unix:'))!.slice('unix:'.length);
    const mount = daemon.volumeMounts!.find((m) => socket.startsWith(`${m.mountPath}/`))!;
    expect(mount, `no volume holds ${socket}`).toBeDefined();
    const volume = pod.volumes.find((v) => v.name === mount.name)!;
    expect(volume.hostPath).toEqual({ path: '/run/tensormem', type: 'DirectoryOrCreate' });
  });
});
