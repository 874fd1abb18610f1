/**
 * The CNI executables' view of the local podtun daemon: one `GET /cni` on its Unix socket
 * (local-api.ts), answered 200 `{"ready":true,"node","subnets","mtu","clusterCidrs"}` once the
 * node's lease is up, else 503 `{"ready":false,"reason"}`.
 *
 * Every way of not getting a usable lease is a CniError whose message starts with
 * "podtun daemon not ready:" and names the socket, so that kubelet's event for a pod stuck in
 * ContainerCreating says what to look at:
 *   - socket missing, refused, or no answer within timeoutMs -> 11 (try again later): the daemon
 *     is starting or restarting, and the runtime retries the sandbox;
 *   - 503 -> 11 with the daemon's own reason ("lease not up");
 *   - 404 -> 50 (not available): a daemon too old to serve /cni will not get better by waiting;
 *   - any other status -> 11; a reply that is not the documented shape -> 6 (decode failure).
 *
 * Bundled into the CNI executables: imports node builtins, its own folder and api/api-client.ts only.
 */
import { isIP } from 'node:net';
import { CniCode, CniError } from './cni-error.js';
import { fetchApi } from '../api/api-client.js';
import type { ApiReply } from '../api/api-client.js';

/** What a pod on this node is attached with, as the daemon reports it. */
export interface NodeLease {
  node: string;
  /** This node's pod subnets, CIDR text, IPv4 first (as the daemon orders them). */
  subnets: string[];
  /** The pod interface MTU (the tunnel MTU). */
  mtu: number;
  clusterCidrs: string[];
}

/** The path of the daemon's CNI endpoint on its local API socket. */
export const CNI_API_PATH = '/cni';

/** How long a CNI call waits for the daemon by default: it is local, so slow means stuck. */
export const DEFAULT_DAEMON_TIMEOUT_MS = 2_000;

/** MTU bounds accepted from the daemon: IPv4's minimum, the largest a link can carry. */
const MIN_MTU = 68;
const MAX_MTU = 65_535;

/** Asks the daemon behind `socketPath` for this node's lease; see the module comment for errors. */
export async function fetchNodeLease(socketPath: string, timeoutMs = DEFAULT_DAEMON_TIMEOUT_MS): Promise<NodeLease> {
  let reply: ApiReply;
  try {
    reply = await fetchApi(socketPath, CNI_API_PATH, timeoutMs);
  } catch (err: unknown) {
    if (err instanceof Error && err.cause instanceof SyntaxError) {
      throw new CniError(CniCode.DecodeFailure, `podtun daemon at ${socketPath} sent a reply that is not JSON`, err.message, { cause: err });
    }
    throw new CniError(
      CniCode.TryAgainLater,
      `podtun daemon not ready: cannot reach ${socketPath} (${describeConnectError(err)}); is podtun running on this node?`,
      undefined,
      { cause: err },
    );
  }
  const body = asObject(reply.body);
  if (reply.status === 200) return parseLease(body, socketPath);
  if (reply.status === 503) {
    const reason = typeof body?.['reason'] === 'string' && body['reason'] !== '' ? body['reason'] : 'no reason given';
    throw new CniError(CniCode.TryAgainLater, `podtun daemon not ready: ${reason} (${socketPath})`);
  }
  if (reply.status === 404) {
    throw new CniError(
      CniCode.NotAvailable,
      `podtun daemon at ${socketPath} does not serve GET ${CNI_API_PATH}: it is older than this CNI plugin; upgrade podtun on this node`,
    );
  }
  throw new CniError(
    CniCode.TryAgainLater,
    `podtun daemon not ready: GET ${CNI_API_PATH} on ${socketPath} answered ${reply.status}`,
    typeof reply.body === 'string' ? reply.body.slice(0, 500) : JSON.stringify(reply.body)?.slice(0, 500),
  );
}

/** The errno code (ENOENT, ECONNREFUSED, EACCES) when there is one, else the message. */
function describeConnectError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : err.message;
  }
  return String(err);
}

/** The body as an object: parsed JSON, or JSON text served without a JSON content type. */
function asObject(body: unknown): Record<string, unknown> | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function parseLease(body: Record<string, unknown> | undefined, socketPath: string): NodeLease {
  const bad = (what: string): CniError =>
    new CniError(CniCode.DecodeFailure, `podtun daemon at ${socketPath} answered GET ${CNI_API_PATH} with ${what}`, JSON.stringify(body)?.slice(0, 500));
  if (body === undefined) throw bad('a body that is not a JSON object');
  const { node, subnets, mtu, clusterCidrs } = body;
  if (body['ready'] !== true) throw bad('200 but not "ready": true');
  if (typeof node !== 'string' || node === '') throw bad('no "node" name');
  if (!isCidrList(subnets) || subnets.length === 0) throw bad('"subnets" that are not a non-empty list of CIDRs');
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw bad(`"mtu" that is not an integer in ${MIN_MTU}..${MAX_MTU}`);
  }
  if (!isCidrList(clusterCidrs)) throw bad('"clusterCidrs" that are not a list of CIDRs');
  return { node, subnets: [...subnets], mtu, clusterCidrs: [...clusterCidrs] };
}

function isCidrList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && isCidr(v));
}

/** `address/prefix` with a prefix that fits the address family. */
export function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefixText)) return false;
  return Number(prefixText) <= (family === 4 ? 32 : 128);
}
