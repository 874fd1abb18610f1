/**
 * The internet checksum (RFC 1071) and its incremental update (RFC 1624). Sums are kept as
 * plain numbers (not int32): a 64 KiB packet sums to well under 2^53, folded at the end.
 */

/** Adds the big-endian 16-bit words of `buf[off..off+len)` to `sum` (odd tail padded). Not folded. */
export function sumWords(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if ((len & 1) === 1) sum += buf[end]! << 8;
  return sum;
}

/** Folds a sum to 16 bits, end-around carry. */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for a folded-or-not sum: one's complement of the folded sum. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** Checksum of `buf[off..off+len)` (the checksum field inside must be zero, or the result is 0 when valid). */
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return finishChecksum(sumWords(buf, off, len, 0));
}

/**
 * RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  return ~foldSum((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}
