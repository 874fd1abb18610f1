/** The tun layer: the TUN exists and is up, with the TUN MTU and the node subnets' network addresses. */
import { formatAddress, parseCidr } from '../../core/cidr.js';
import { tunMtuOf } from '../config/node-config.js';
import type { NodeConfig } from '../config/node-config.js';
import { IP_TIMEOUT_MS, fail, firstLine, parseJsonArray, pass } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

interface IpLink {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

export async function tunChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const tun = config.tunName;
  const restart = `start podtun on this node (podtun run --config ${config.source}); it creates ${tun}`;
  const r = await probes.exec(['ip', '-j', 'addr', 'show', 'dev', tun], IP_TIMEOUT_MS);
  const link = r.code === 0 ? parseJsonArray<IpLink>(r.stdout)[0] : undefined;
  if (link === undefined) {
    return [fail('tun', 'link', `${tun}: ${firstLine(r.stderr) || 'not found'}`, restart)];
  }
  const out: DoctorCheck[] = [];
  const flags = link.flags ?? [];
  if (flags.includes('UP')) out.push(pass('tun', 'link', `${tun} up (${link.operstate ?? '?'})`));
  else out.push(fail('tun', 'link', `${tun} is down (flags ${flags.join(',')})`, `ip link set ${tun} up (or restart podtun)`));

  const wantMtu = tunMtuOf(config);
  if (link.mtu === wantMtu) out.push(pass('tun', 'mtu', `${link.mtu} (underlayMtu ${config.underlayMtu} - tunnel overhead)`));
  else out.push(fail('tun', 'mtu', `${link.mtu ?? '?'}, expected ${wantMtu} (underlayMtu ${config.underlayMtu} - tunnel overhead)`, `ip link set ${tun} mtu ${wantMtu} (or restart podtun)`));

  const local = config.nodes.find((n) => n.name === config.nodeName) ?? { subnets: [] };
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local ?? ''}/${a.prefixlen ?? ''}`));
  for (const subnet of local.subnets) {
    const cidr = parseCidr(subnet);
    const want = `${formatAddress({ family: cidr.family, bytes: cidr.bytes })}/${cidr.family === 4 ? 32 : 128}`;
    const name = cidr.family === 4 ? 'address' : 'address v6';
    if (have.has(want)) out.push(pass('tun', name, `${want} (network address of ${subnet})`));
    else out.push(fail('tun', name, `${want} missing (has ${[...have].join(', ') || 'none'})`, `ip addr add ${want} dev ${tun} (or restart podtun)`));
  }
  return out;
}
