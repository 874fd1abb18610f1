/*
 * The N-API face of a keypair table (seal.h), shared by the two classes that hold one: a sealed
 * NativeUdp and a NativeSealer. One place for the arguments, checks, errors and counter names of
 * installKeypair, clearKeypairs, keypairInfo and stats(), so both classes behave alike.
 * Control path only: these allocate (JS objects), the data path does not come here.
 */
#ifndef PODTUN_SEAL_NAPI_H
#define PODTUN_SEAL_NAPI_H

#include <node_api.h>
#include <stdint.h>

#include "seal.h"

/* A slot argument: an integer in [0, PT_SEAL_SLOTS). */
int pt_get_seal_slot(napi_env env, napi_value v, int64_t *slot);

/* installKeypair(slot, localIndex, remoteIndex, sendKey, recvKey, cipher, initiator): `argv`
 * holds those 7 values. Throws RangeError on bad arguments (a localIndex whose low bits are not
 * the slot too), ERR_PODTUN_SEAL_INDEX_IN_USE, ERR_PODTUN_SEAL_KEY. */
void pt_seal_napi_install(napi_env env, pt_seal *s, const napi_value *argv);

/* clearKeypairs(slot) */
void pt_seal_napi_clear(napi_env env, pt_seal *s, napi_value slot);

/* keypairInfo(slot) -> { hasCurrent, currentAgeMs, sendCounter, hasNext, lastReceiveAgeMs, confirmed, keypairs } */
napi_value pt_seal_napi_info(napi_env env, const pt_seal *s, napi_value slot);

/* Adds noKeypairDrops, sealSealed, sealOpened, sealUnknownIndex, sealAuthFailed, sealReplayed,
 * sealExpired to `obj`. Returns 0 when N-API failed. */
int pt_seal_napi_counters(napi_env env, napi_value obj, const pt_seal_counters *c);

#endif
