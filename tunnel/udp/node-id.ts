/**
 * A node's 32-bit identity in tunnel headers: FNV-1a of its name. Every node derives the same id
 * from the name alone, so no coordination is needed; config loading rejects two names that
 * collide.
 */
export function nodeIdOf(nodeName: string): number {
  let hash = 0x811c9dc5;
  const bytes = Buffer.from(nodeName, 'utf8');
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
