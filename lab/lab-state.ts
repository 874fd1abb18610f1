/**
 * The lab's state file, `/run/podtun-lab/state.json`: what `lab up` (or `demo --keep`) made, so
 * that `lab status` and `lab down`, later commands, find it again. Written before anything is
 * built (phase `building`, naming the building process) and rewritten once the cluster is kept
 * (phase `up`, naming each daemon). The lab's namespaces are those of run id LAB_RUN_ID
 * (`ptlab-*`): random run ids are 3 hex digits, so no other run can use that prefix, and
 * `lab down` finds what a crashed `lab up` left by name. Under /run: gone at reboot, like the
 * namespaces it describes.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessIdentity } from './process-start.js';

export const LAB_DIR = '/run/podtun-lab';
export const LAB_STATE_FILE = join(LAB_DIR, 'state.json');
/** The cluster's folder: configs, keys, logs, status sockets. */
export const LAB_RUN_DIR = join(LAB_DIR, 'run');
export const LAB_RUN_ID = 'lab';
const STATE_VERSION = 1;

export interface LabNode {
  name: string;
  ns: string;
  underlayIp: string;
  /** The node's `podtun run`, by PID and start time. */
  daemon: ProcessIdentity;
  socket: string;
  config: string;
  log: string;
  /** "127.0.0.1:9403", inside `ns`. */
  dashboard: string;
  /** The node's underlay drops UDP (its peers reach it over WebSocket). */
  udpBlocked: boolean;
}

export interface LabPod {
  name: string;
  ns: string;
  node: string;
  ipv4: string;
  ipv6: string | undefined;
}

export interface BuildingLab {
  version: typeof STATE_VERSION;
  phase: 'building';
  /** `lab up` or `demo --keep`, while it builds. */
  owner: ProcessIdentity;
  command: string;
  startedAt: string;
  dir: string;
}

export interface UpLab extends Omit<BuildingLab, 'phase'> {
  phase: 'up';
  upAt: string;
  /** Every namespace of the lab; the underlay switch's is `underlayNs`. */
  namespaces: string[];
  underlayNs: string;
  nodes: LabNode[];
  pods: LabPod[];
}

export type LabState = BuildingLab | UpLab;

/** A state file that exists but cannot be read as one; `lab down` still removes the lab by name. */
export class LabStateError extends Error {
  readonly code = 'ERR_PODTUN_LAB_STATE';
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'LabStateError';
  }
}

/** The lab's state, or undefined when there is no state file. */
export function readLabState(path = LAB_STATE_FILE): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LabStateError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err: unknown) {
    throw new LabStateError(`${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!isLabState(parsed)) throw new LabStateError(`${path} is not a podtun lab state (version ${STATE_VERSION})`);
  return parsed;
}

/** The fields the lab commands rely on: a file from another version is refused, not half-read. */
function isLabState(value: unknown): value is LabState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v['version'] !== STATE_VERSION || typeof v['dir'] !== 'string' || typeof v['command'] !== 'string') return false;
  if (!isIdentity(v['owner'])) return false;
  if (v['phase'] === 'building') return true;
  const nodes = v['nodes'];
  return (
    v['phase'] === 'up' &&
    Array.isArray(nodes) &&
    nodes.every((n: unknown) => typeof n === 'object' && n !== null && isIdentity((n as Record<string, unknown>)['daemon'])) &&
    Array.isArray(v['pods']) &&
    Array.isArray(v['namespaces'])
  );
}

function isIdentity(value: unknown): value is ProcessIdentity {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return Number.isSafeInteger(v['pid']) && (v['pid'] as number) > 1 && Number.isSafeInteger(v['startTicks']);
}

/** Writes the state by temp file + rename: a reader never sees half of it. */
export function writeLabState(state: LabState, path = LAB_STATE_FILE): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(temp, path);
}

export function removeLabState(path = LAB_STATE_FILE): void {
  rmSync(path, { force: true });
}

export function buildingState(owner: ProcessIdentity, command: string, dir: string): BuildingLab {
  return { version: STATE_VERSION, phase: 'building', owner, command, startedAt: new Date().toISOString(), dir };
}
