#include "checksum.h"

#include <string.h>

uint64_t pt_csum_add(uint64_t sum, const void *data, size_t len) {
  const uint8_t *p = data;
  /* 32-bit words into a 64-bit accumulator: no carry handling needed below 2^32 words. */
  uint64_t a = 0, b = 0, c = 0, d = 0;
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
    p += 16;
    len -= 16;
  }
  sum += a + b + c + d;
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0; /* the odd byte is the first byte of a zero-padded word */
    memcpy(&w, p, 1);
    sum += w;
  }
  return sum;
}

uint16_t pt_csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

uint16_t pt_load16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

void pt_store16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
