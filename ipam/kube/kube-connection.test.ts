import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inClusterConnection, kubeconfigConnection, KubeConnectionError } from './kube-connection.js';

describe('kube connection', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podtun-kube-conn-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('in-cluster: the service host and port, the CA, and a token re-read when the kubelet rotates it', async () => {
    await writeFile(join(dir, 'ca.crt'), 'CA');
    await writeFile(join(dir, 'token'), 'first\n');
    const c = inClusterConnection({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir);
    expect(c.server.href).toBe('https://10.96.0.1/');
    expect(c.ca?.toString()).toBe('CA');
    if (c.credentials.kind !== 'token-file') throw new Error('expected a token file');
    expect(c.credentials.file.current()).toBe('first');
    await writeFile(join(dir, 'token'), 'second\n');
    await utimes(join(dir, 'token'), new Date(), new Date(Date.now() + 5_000));
    expect(c.credentials.file.current()).toBe('second');
    expect(inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, dir).server.href).toBe('https://[fd00::1]:6443/');
  });

  it('in-cluster outside a cluster says how to run outside one', () => {
    expect(() => inClusterConnection({}, dir)).toThrow(/KUBERNETES_SERVICE_HOST is not set\): set subnetManager.kubeconfig/);
  });

  it('a kubeconfig: the current context\'s server, CA data and client certificate', async () => {
    const path = join(dir, 'cert.kubeconfig');
    await writeFile(path, [
      'apiVersion: v1', 'current-context: b',
      'clusters:', '- name: c1', '  cluster: { server: "https://10.0.0.1:6443", certificate-authority-data: Q0E= }',
      'users:', '- name: u1', '  user: { client-certificate-data: Q0VSVA==, client-key-data: S0VZ }',
      'contexts:', '- name: a', '  context: { cluster: nope, user: nope }', '- name: b', '  context: { cluster: c1, user: u1 }', '',
    ].join('\n'));
    const c = kubeconfigConnection(path);
    expect(c.server.href).toBe('https://10.0.0.1:6443/');
    expect(c.ca?.toString()).toBe('CA');
    expect(c.credentials).toEqual({ kind: 'client-certificate', cert: Buffer.from('CERT'), key: Buffer.from('KEY') });
    expect(c.describe).toBe(`kubeconfig ${path} (context b)`);
  });

  it.each<[string, string, RegExp]>([
    ['no such context', 'current-context: x\ncontexts: []\nclusters: []\nusers: []\n', /contexts: no entry named "x"/],
    ['plain http', 'current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "http://10.0.0.1:8080"}}]\nusers: [{name: u, user: {token: t}}]\n', /only https is supported/],
    ['exec credentials', 'current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://h:1"}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n', /exec and auth-provider credentials are not supported/],
    ['not YAML', 'a: [', /not valid YAML/],
  ])('refuses %s, naming the file and why', async (name, text, reason) => {
    const path = join(dir, `${name.replace(/ /g, '-')}.kubeconfig`);
    await writeFile(path, text);
    expect(() => kubeconfigConnection(path)).toThrow(KubeConnectionError);
    expect(() => kubeconfigConnection(path)).toThrow(reason);
  });
});
