/**
 * The daemon layer: GET /status answers on the status socket (the report the peer checks read),
 * it is this node's daemon, and it lists every configured peer.
 */
import { StatusSchemaError } from '../../api/status-schema.js';
import type { StatusReport } from '../../api/status-schema.js';
import { errorMessage } from '../../core/config-check.js';
import type { NodeConfig } from '../config/node-config.js';
import { fail, pass } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

export async function daemonChecks(
  probes: DoctorProbes,
  socketPath: string,
  config: NodeConfig | undefined,
): Promise<{ checks: DoctorCheck[]; status: StatusReport | undefined }> {
  let status: StatusReport;
  try {
    status = await probes.status(socketPath);
  } catch (err: unknown) {
    const check = err instanceof StatusSchemaError
      ? fail('daemon', 'status', `${socketPath}: ${err.message}`, 'is this the socket of podtun run?')
      : fail('daemon', 'status', `${socketPath}: ${errorMessage(err)}`, 'is podtun run running on this node? (start it; or pass --socket PATH if it serves another socket)');
    return { checks: [check], status: undefined };
  }
  const checks = [pass('daemon', 'status', `${socketPath}: node ${status.node}, ${status.peers.length} peers`)];
  if (config !== undefined) {
    const listed = new Set(status.peers.map((p) => p.node));
    const missing = config.nodes.filter((n) => n.name !== config.nodeName && !listed.has(n.name)).map((n) => n.name);
    if (missing.length === 0) checks.push(pass('daemon', 'peers', `${listed.size} listed: ${[...listed].join(', ') || 'none'}`));
    else checks.push(fail('daemon', 'peers', `in the config but not in /status: ${missing.join(', ')}`, 'the daemon runs another config: check --config, or send SIGHUP to reload'));
    if (status.node !== config.nodeName) {
      checks.push(fail('daemon', 'node', `the daemon is ${status.node}, the config says ${config.nodeName}`, 'point --config and --socket at the same node'));
    }
  }
  return { checks, status };
}
