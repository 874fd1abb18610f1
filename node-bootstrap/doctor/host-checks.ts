/**
 * The host layer: IPv4 forwarding (and IPv6 with an IPv6 cluster CIDR), and rp_filter on the TUN
 * not strict (replies from peer pods arrive on the TUN from addresses routed elsewhere).
 */
import { parseCidr } from '../../core/cidr.js';
import type { NodeConfig } from '../config/node-config.js';
import { fail, pass } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';

export async function hostChecks(probes: DoctorProbes, config: NodeConfig): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [await forwardingCheck(probes, 4)];
  if (config.clusterCidrs.some((c) => parseCidr(c).family === 6)) out.push(await forwardingCheck(probes, 6));
  const tun = config.tunName;
  const [onTun, onAll] = await Promise.all([probes.sysctl(`net/ipv4/conf/${tun}/rp_filter`), probes.sysctl('net/ipv4/conf/all/rp_filter')]);
  if (onTun === undefined) {
    out.push(fail('host', 'rp_filter', `net.ipv4.conf.${tun}.rp_filter unreadable (no ${tun}?)`, `see the tun checks; podtun sets it to 0 at start`));
  } else {
    const effective = Math.max(Number(onTun), Number(onAll ?? '0'));
    const detail = `${tun} ${onTun}, all ${onAll ?? '?'}: effective ${effective}`;
    if (effective === 1) {
      const fix = Number(onAll ?? '0') === 1 ? 'sysctl -w net.ipv4.conf.all.rp_filter=0 (or 2)' : `sysctl -w net.ipv4.conf.${tun}.rp_filter=0`;
      out.push(fail('host', 'rp_filter', `${detail} (strict: replies from peer pods may be dropped)`, fix));
    } else {
      out.push(pass('host', 'rp_filter', detail));
    }
  }
  return out;
}

export async function forwardingCheck(probes: DoctorProbes, family: 4 | 6): Promise<DoctorCheck> {
  const [key, path] = family === 4 ? ['net.ipv4.ip_forward', 'net/ipv4/ip_forward'] : ['net.ipv6.conf.all.forwarding', 'net/ipv6/conf/all/forwarding'];
  const name = family === 4 ? 'ip_forward' : 'ipv6 forwarding';
  const value = await probes.sysctl(path);
  if (value === '1') return pass('host', name, `${key} = 1`);
  return fail('host', name, `${key} = ${value ?? 'unreadable'}: pods' packets are not forwarded to or from the TUN`, `sysctl -w ${key}=1 (podtun run sets it at start; something reset it)`);
}
