/*
 * hash.h - the engine's hash of byte strings.
 */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * 64-bit hash of bytes (borrowed): XXH64 with seed 0, so stable across builds,
 * hosts and versions (serialized sketches stay comparable, stored hashes stay
 * valid). Callers hash a value's msgpack bytes, so 1 and 1.0 differ. Never fails.
 */
uint64_t sl_hash_bytes(const void *bytes, size_t len);

#endif
