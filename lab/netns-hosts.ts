/**
 * Host names the processes of one namespace resolve, through the ordinary resolver: `ip netns
 * exec NS` bind-mounts the files of /etc/netns/NS/ over those of /etc/ for what it runs, so glibc
 * (Node's dns.lookup included) reads /etc/netns/NS/hosts as /etc/hosts. The file is rewritten in
 * place (same inode, which the bind mount holds), so a process already running sees the new
 * names at its next lookup. Write it before starting what must see it; the folder goes with the
 * namespace (cleanup.ts, removeNamespaceSync).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Per-namespace files of `ip netns exec`. */
export const NETNS_ETC_DIR = '/etc/netns';

/** /etc/netns/NS/hosts: localhost, then `address name` per entry of `names` (name -> address). */
export function writeNamespaceHosts(ns: string, names: Readonly<Record<string, string>>): void {
  const dir = join(NETNS_ETC_DIR, ns);
  mkdirSync(dir, { recursive: true });
  const lines = ['127.0.0.1 localhost', '::1 localhost', ...Object.entries(names).map(([name, address]) => `${address} ${name}`)];
  writeFileSync(join(dir, 'hosts'), `${lines.join('\n')}\n`);
}
