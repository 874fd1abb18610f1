/*
 * Internet checksum (RFC 1071) over bytes as they sit in memory: sums are taken in native byte
 * order, which RFC 1071 section 2(B) shows is equivalent; a folded sum stored back with a native
 * 16-bit store lands in network order. Values added by hand (lengths, protocol numbers) must be
 * added in network order: htons()/htonl().
 */
#ifndef PODTUN_CHECKSUM_H
#define PODTUN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Adds `len` bytes at `data` to the running sum. Only the last chunk of a sum may have an odd
 * length (an odd chunk in the middle would shift every later byte to the other half-word). */
uint64_t pt_csum_add(uint64_t sum, const void *data, size_t len);

/* Folds a running sum to 16 bits, not complemented. */
uint16_t pt_csum_fold(uint64_t sum);

/* Reads / writes a 16-bit checksum field in native order (the order the sums use). */
uint16_t pt_load16(const uint8_t *p);
void pt_store16(uint8_t *p, uint16_t v);

#endif
