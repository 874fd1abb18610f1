/**
 * The mtu:<name> layer: the largest DF ping through the tunnel to the peer's pod bridge gateway
 * (its subnet's first address), against the TUN MTU and the peer's own tunnel MTU.
 */
import type { PeerReport } from '../../api/status-schema.js';
import { addressInCidr, formatAddress, parseCidr } from '../../core/cidr.js';
import { tunMtuOf } from '../config/node-config.js';
import type { NodeConfig, NodeSpec } from '../config/node-config.js';
import { fail, pass } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

const PING_TIMEOUT_MS = 4_000;
/** Underlay sizes tried (the brief's 1500/1450/1400/1280), plus the TUN MTU and the peer's tunnel MTU. */
const PMTU_SIZES = [1500, 1450, 1400, 1280] as const;
/** IPv4 header + ICMP echo header. */
const PING_HEADERS_V4 = 28;

export async function mtuCheck(probes: DoctorProbes, config: NodeConfig, peer: NodeSpec, seen: PeerReport | undefined): Promise<DoctorCheck> {
  const layer = `mtu:${peer.name}`;
  const subnet = peer.subnets.map(parseCidr).find((c) => c.family === 4);
  if (subnet === undefined) return pass(layer, 'path', 'no IPv4 subnet (IPv6 path MTU not measured)');
  const target = formatAddress(addressInCidr(subnet, 1));
  if (seen !== undefined && seen.state !== 'up') {
    return fail(layer, 'path', `not measured: ${peer.name} is ${seen.state}`, `see peer:${peer.name}`);
  }
  const tunMtu = tunMtuOf(config);
  const want = Math.min(tunMtu, seen?.tunnelMtu ?? tunMtu);
  const sizes = [...new Set([tunMtu, want, ...PMTU_SIZES])].filter((s) => s <= tunMtu).sort((a, b) => b - a);
  const results = await Promise.all(
    sizes.map(async (size) => {
      const r = await probes.exec(['ping', '-n', '-M', 'do', '-s', String(size - PING_HEADERS_V4), '-c', '1', '-W', '1', target], PING_TIMEOUT_MS);
      return { size, ok: r.code === 0 };
    }),
  );
  const best = results.find((r) => r.ok)?.size;
  const tried = sizes.join('/');
  if (best === undefined) {
    return fail(layer, 'path', `no DF ping to ${target} (${peer.name}'s pod bridge gateway) got through at ${tried} bytes`, `the tunnel does not carry traffic to ${peer.name}: see routes and peer:${peer.name}; is ${target} up on ${peer.name}?`);
  }
  const detail = `largest DF packet to ${target}: ${best} bytes (tried ${tried}; TUN MTU ${tunMtu}${want < tunMtu ? `, ${peer.name}'s tunnel MTU ${want}` : ''})`;
  if (best >= want) return pass(layer, 'path', detail);
  return fail(layer, 'path', detail, `the underlay path to ${peer.name} is smaller than underlayMtu ${config.underlayMtu}: set mtu: ${best + (tunMtu === config.underlayMtu ? 0 : config.underlayMtu - tunMtu)} on ${peer.name}'s entry, or fix the underlay MTU`);
}
