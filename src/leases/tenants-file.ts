/**
 * The tenants file (--tenants; YAML, or JSON when the name ends in .json). A .json file must be JSON
 * (a trailing comma, a comment, single quotes are refused with the file, line and column); it is
 * parsed once, by JSON's grammar, into the nodes the YAML parser gives a .yaml file, with their
 * places, so that one set of checks reads both and every later error can name its line:
 *
 *   tenants:
 *     - name: team-a
 *       token_sha256: "<hex sha-256 of the token>"
 *       quota: { device: 8G, host: 4G, mmap: 16G }  # hard caps; device applies to each device,
 *                                            # mmap to the tenant's MMAP workspace files together
 *       guarantee: { device: 2G }            # kept free for this tenant while others borrow
 *       max_leases: 16
 *       max_arrays: 100000                # live arrays of all its leases together
 *       max_mapped_regions: 1000          # exported arrays' regions + MMAP workspaces, all its leases
 *     - name: admin
 *       token_sha256: "<hex>"
 *       admin: true                          # may list and evict every lease
 *
 * Sizes are as for flags (8G = 8 GiB); `%` is not accepted here. A bad file is refused whole with the
 * line that is wrong.
 */
import { accessSync, closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Node, Pair, Scalar, YAMLMap, YAMLSeq, isMap, isScalar, isSeq } from 'yaml';
import { TensormemError, quoted } from '../errors';
import { JsonSyntaxError, lineAndColumn, parseJsonNodes, type JsonNode, type JsonScalar } from '../config/json-syntax';
import { parseSize } from '../config/sizes';
import { nameLike } from '../name-like';
import { MAX_FLOW_DEPTH, parseDocumentGuarded } from '../config/yaml-nesting';

export interface TenantSpec {
  name: string;
  /** Lower-case hex SHA-256 of the tenant's token. */
  tokenSha256: string;
  /** Hard cap per device; 0 = none. */
  deviceQuotaBytes: number;
  /** Hard cap of host memory; 0 = none. */
  hostQuotaBytes: number;
  /** Hard cap of the bytes of the tenant's mapped MMAP workspace files; 0 = none. */
  mmapQuotaBytes: number;
  /** Device bytes kept free for this tenant while others borrow; 0 = none. */
  deviceGuaranteeBytes: number;
  /** 0 = no limit. */
  maxLeases: number;
  /** Most live arrays of all its leases together; 0 = no limit. */
  maxArrays: number;
  /** Most mapped regions (exported arrays' regions of their own, MMAP workspaces' mappings) of all its leases together; 0 = no limit. */
  maxMappedRegions: number;
  admin: boolean;
}

const TENANT_KEYS = new Set(['name', 'token_sha256', 'quota', 'guarantee', 'max_leases', 'max_arrays', 'max_mapped_regions', 'admin']);

class TenantsFileError extends TensormemError {
  constructor(path: string, line: number | undefined, message: string, column?: number) {
    super('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `${path}${line ? `:${line}` : ''}${line && column ? `:${column}` : ''}: ${message}`, { field: '--tenants' });
  }
}

export function readTenantsFile(path: string): TenantSpec[] {
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new TenantsFileError(path, undefined, `cannot read: ${(error as Error).message}`);
  }
  try {
    // Checked on the descriptor that is read, so that a file swapped in after the check is not read.
    checkOnlyTrustedMayWrite(path, fstatSync(fd));
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof TenantsFileError) throw error;
    throw new TenantsFileError(path, undefined, `cannot read: ${(error as Error).message}`);
  } finally {
    closeSync(fd);
  }
  return parseTenants(text, path);
}

/**
 * The tenants file decides who is admin and every quota, and a SIGHUP (or a restart) takes whatever it
 * says: one that another local user may write, or swap (a folder they may write, without the sticky
 * bit), would let that user add an admin tenant with a token of their own. So the file must belong to
 * the daemon's user or root and be writable by no one else, as sshd's StrictModes asks of
 * authorized_keys; the file's folder likewise, unless it is on a read-only mount. Group or others may
 * still read it (it holds hashes only).
 */
function checkOnlyTrustedMayWrite(path: string, file: { uid: number; mode: number }): void {
  const ownUid = process.getuid?.();
  if (ownUid === undefined) return;
  const trusted = (uid: number) => uid === ownUid || uid === 0;
  const fix = `(chmod go-w, and chown to the daemon's user or root)`;
  if (!trusted(file.uid)) throw new TenantsFileError(path, undefined, `belongs to user ${file.uid}, not to the daemon's user ${ownUid} or root: another user could give themselves an admin token ${fix}`);
  if ((file.mode & 0o022) !== 0) throw new TenantsFileError(path, undefined, `may be written by group or others (mode ${(file.mode & 0o777).toString(8)}), who could give themselves an admin token ${fix}`);
  // The folder of the name given and, when it is a link, of every name the link leads through to the file:
  // a link to a file in a folder others may write lets them replace the file as well.
  for (const folder of linkFolders(path)) {
    const folderStatus = statSync(folder);
    const sticky = (folderStatus.mode & 0o1000) !== 0;
    if ((!trusted(folderStatus.uid) || ((folderStatus.mode & 0o022) !== 0 && !sticky)) && !onReadOnlyMount(folder)) {
      throw new TenantsFileError(path, undefined, `its folder ${folder} (user ${folderStatus.uid}, mode ${(folderStatus.mode & 0o7777).toString(8)}) lets another user replace the file: use a folder of the daemon's user or root that group and others may not write`);
    }
  }
}

/** The folder of `path` and of each name its symbolic links lead through, up to the file (at most 40 links, as the kernel follows). */
function linkFolders(path: string): string[] {
  const folders = [dirname(path)];
  let name = path;
  for (let hops = 0; hops < 40 && lstatSync(name).isSymbolicLink(); hops++) {
    name = resolve(dirname(name), readlinkSync(name));
    if (!folders.includes(dirname(name))) folders.push(dirname(name));
  }
  return folders;
}

/**
 * Whether `path` lies on a read-only mount, where no user can write or rename anything whatever the
 * modes say. A Kubernetes ConfigMap volume is one: its folder is mode 0777 without the sticky bit (the
 * kubelet's emptyDir), mounted read-only, and its files are root's; refused for the folder's mode,
 * the DaemonSet's natural way to ship a tenants file kept the daemon from starting.
 */
function onReadOnlyMount(path: string): boolean {
  try {
    accessSync(path, fsConstants.W_OK);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EROFS';
  }
}

/** The file's top node, and the line a node of it starts on. */
interface ParsedFile {
  root: unknown;
  lineOf(offset: number): number;
}

/**
 * A .json file, parsed by JSON's grammar alone (YAML's flow syntax takes what JSON does not, a trailing
 * comma read without a word, and refuses the rest in its own words), as YAML nodes whose range is the
 * JSON value's offset. A key given twice in one object is refused, as YAML refuses it, with its place.
 */
function jsonFile(text: string, path: string): ParsedFile {
  let parsed: { root: JsonNode; body: string };
  try {
    parsed = parseJsonNodes(text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new TenantsFileError(path, error.line, `not valid JSON (${error.detail})`, error.column);
  }
  const { root, body } = parsed;
  const make = (node: JsonNode): Scalar | YAMLSeq | YAMLMap => {
    const made = node.kind === 'scalar' ? Object.assign(new Scalar(node.value), { source: node.source }) : node.kind === 'array' ? new YAMLSeq() : new YAMLMap();
    made.range = [node.offset, node.offset, node.offset];
    return made;
  };
  const top = make(root);
  // No recursion, as the walk that parsed it: a file nested thousands deep is refused by the checks, not by the stack.
  const pending: Array<[JsonNode, Scalar | YAMLSeq | YAMLMap]> = [[root, top]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, into] = next;
    const children: Array<{ key?: JsonScalar; item: JsonNode }> = node.kind === 'array' ? node.items.map((item) => ({ item })) : node.kind === 'object' ? node.entries.map(({ key, value }) => ({ key, item: value })) : [];
    const keys = new Set<unknown>();
    for (const { key, item } of children) {
      const made = make(item);
      if (key === undefined) {
        (into as YAMLSeq).items.push(made);
      } else {
        if (keys.has(key.value)) {
          const { line, column } = lineAndColumn(body, key.offset);
          throw new TenantsFileError(path, line, `key ${key.source} is given twice in one object`, column);
        }
        keys.add(key.value);
        (into as YAMLMap).items.push(new Pair(make(key), made));
      }
      pending.push([item, made]);
    }
  }
  return { root: top, lineOf: (offset) => lineAndColumn(body, offset).line };
}

/** What the nesting guard found nested too deep, in words. */
const NESTING = { flow: 'lists or mappings ([ ] or { })', block: 'block lists or mappings (- , ? or an indented key:)' } as const;

function yamlFile(text: string, path: string): ParsedFile {
  const { deep, document, lines } = parseDocumentGuarded(text);
  if (deep) throw new TenantsFileError(path, deep.line, `${NESTING[deep.kind]} nested more than ${MAX_FLOW_DEPTH} deep: a tenants file needs at most 4`, deep.column);
  if (document.errors.length > 0) {
    const error = document.errors[0];
    throw new TenantsFileError(path, error.linePos?.[0].line, error.message.split('\n')[0]);
  }
  return { root: document.contents, lineOf: (offset) => lines.linePos(offset).line };
}

export function parseTenants(text: string, path = 'tenants'): TenantSpec[] {
  const { root, lineOf: lineAt } = path.endsWith('.json') ? jsonFile(text, path) : yamlFile(text, path);
  const lineOf = (node: unknown): number | undefined => {
    const range = (node as Node | undefined)?.range;
    return range ? lineAt(range[0]) : undefined;
  };
  const fail = (node: unknown, message: string): never => {
    throw new TenantsFileError(path, lineOf(node), message);
  };
  if (!isMap(root)) fail(root, 'expected a mapping with a "tenants" list');
  const list = isMap(root) ? root.get('tenants', true) : undefined;
  if (!isSeq(list)) fail(list ?? root, 'expected "tenants:" followed by a list of tenants');
  // Any other key is a mistake: a tenant's quota or max_leases indented as if at the top would be
  // dropped without a word, and the tenant served with no cap.
  for (const pair of (root as unknown as { items: Array<{ key: unknown }> }).items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (key !== 'tenants') fail(pair.key, `unknown key ${quoted(key)} at the top of the file (expected only tenants, a list of tenants)`);
  }

  const tenants: TenantSpec[] = [];
  const names = new Set<string>();
  const hashes = new Set<string>();
  for (const item of (list as unknown as { items: unknown[] }).items) {
    if (!isMap(item)) fail(item, 'expected a tenant (a mapping with name and token_sha256)');
    const map = item as { items: Array<{ key: unknown; value: unknown }>; get(key: string, keepNode: true): unknown };
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!TENANT_KEYS.has(key)) {
        const like = nameLike(key, [...TENANT_KEYS]);
        fail(pair.key, `unknown key ${quoted(key)} (${like === undefined ? '' : `did you mean ${like}?; `}expected one of ${[...TENANT_KEYS].join(', ')})`);
      }
    }
    const scalar = (key: string): { node: unknown; value: unknown } => {
      const node = map.get(key, true);
      if (node !== undefined && !isScalar(node)) fail(node, `expected a value for ${key}`);
      return { node: node ?? item, value: node === undefined ? undefined : (node as { value: unknown }).value };
    };
    const name = scalar('name');
    if (typeof name.value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name.value)) {
      fail(name.node, `expected a tenant name (letters, digits, . _ -; at most 64) for name but received ${JSON.stringify(name.value ?? null)}`);
    }
    if (names.has(name.value as string)) fail(name.node, `tenant "${name.value}" is listed twice`);
    const token = scalar('token_sha256');
    if (typeof token.value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(token.value)) {
      fail(token.node, `expected 64 hex digits (the SHA-256 of the token) for token_sha256 of tenant "${name.value}"`);
    }
    const tokenSha256 = (token.value as string).toLowerCase();
    if (hashes.has(tokenSha256)) fail(token.node, `tenant "${name.value}" has the same token as another tenant`);
    const sizes = (key: 'quota' | 'guarantee', allowed: string[]): Record<string, number> => {
      const node = map.get(key, true);
      if (node === undefined) return {};
      if (!isMap(node)) fail(node, `expected a mapping like { device: 8G } for ${key}`);
      const result: Record<string, number> = {};
      for (const pair of (node as { items: Array<{ key: unknown; value: unknown }> }).items) {
        const sub = isScalar(pair.key) ? String(pair.key.value) : '';
        if (!allowed.includes(sub)) fail(pair.key, `unknown key ${quoted(sub)} in ${key} (expected ${allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}` : allowed[0]})`);
        const value = isScalar(pair.value) ? String(pair.value.value) : '';
        try {
          const spec = parseSize(value, `${key}.${sub} of tenant "${name.value}"`, false);
          result[sub] = spec.kind === 'bytes' ? spec.bytes : 0;
        } catch (error) {
          fail(pair.value, (error as Error).message);
        }
      }
      return result;
    };
    const quota = sizes('quota', ['device', 'host', 'mmap']);
    const guarantee = sizes('guarantee', ['device']);
    const count = (key: string) => {
      const entry = scalar(key);
      if (entry.value !== undefined && !(Number.isInteger(entry.value) && (entry.value as number) >= 0)) {
        // A number past a double (1e400, .inf) or .nan as the file writes it: JSON.stringify makes it null.
        const received = typeof entry.value === 'number' && !Number.isFinite(entry.value) && isScalar(entry.node) && entry.node.source ? entry.node.source : JSON.stringify(entry.value);
        fail(entry.node, `expected a non-negative integer for ${key} of tenant "${name.value}" but received ${received}`);
      }
      return (entry.value as number | undefined) ?? 0;
    };
    const maxLeases = count('max_leases');
    const maxArrays = count('max_arrays');
    const maxMappedRegions = count('max_mapped_regions');
    const admin = scalar('admin');
    if (admin.value !== undefined && typeof admin.value !== 'boolean') fail(admin.node, `expected true or false for admin of tenant "${name.value}" but received ${JSON.stringify(admin.value)}`);
    const spec: TenantSpec = {
      name: name.value as string,
      tokenSha256,
      deviceQuotaBytes: quota.device ?? 0,
      hostQuotaBytes: quota.host ?? 0,
      mmapQuotaBytes: quota.mmap ?? 0,
      deviceGuaranteeBytes: guarantee.device ?? 0,
      maxLeases,
      maxArrays,
      maxMappedRegions,
      admin: admin.value === true,
    };
    if (spec.deviceQuotaBytes > 0 && spec.deviceGuaranteeBytes > spec.deviceQuotaBytes) {
      fail(map.get('guarantee', true), `guarantee.device of tenant "${spec.name}" is above its quota.device`);
    }
    names.add(spec.name);
    hashes.add(tokenSha256);
    tenants.push(spec);
  }
  return tenants;
}
