/**
 * Public keys for test configs (static `nodes[].publicKey`, leases): valid X25519 public keys
 * made once with `wg genkey | wg pubkey`. Their private halves are not kept: tests that run a
 * sealed handshake make their own pairs (tunnel/seal/x25519.ts generateX25519).
 */
export const TEST_PUBLIC_KEYS = [
  'VPJH0y8bvw/vZMuwKnpyL5Aa6mmH3D48qY8MOZ768iQ=',
  '/pV3uyGUlU0W2l69B5z/nkMSLKlHsVKFOzewksHdp0Y=',
  'JaPccqgOF2sto/PnMcrkjqTOjmElEe/UG7dsd+/y1kE=',
  'dcLP8kxC08M/WIJdqUBS3sbujzSMjBo08t5gZ+fuBAM=',
  'ileAoOENe5zxGqup/JDb1eT9V+cAO1iLtcAYheVj33k=',
] as const;

/** The test key of node i (0-based); throws past the list, so a test never gets undefined. */
export function testPublicKey(i: number): string {
  const key = TEST_PUBLIC_KEYS[i];
  if (key === undefined) throw new Error(`no test public key ${i}`);
  return key;
}
