/*
 * hash.c - XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0), written from
 * its spec: the one hash of byte strings for sketches, filters and tables.
 */
#include "hash.h"

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)
#define P4 UINT64_C(0x85EBCA77C2B2AE63)
#define P5 UINT64_C(0x27D4EB2F165667C5)

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian loads, byte by byte: any alignment, any host (compilers make them one load). */
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t xxround(uint64_t acc, uint64_t lane)
{
    acc += lane * P2;
    return rotl(acc, 31) * P1;
}

static uint64_t xxmerge(uint64_t h, uint64_t v)
{
    h ^= xxround(0, v);
    return h * P1 + P4;
}

uint64_t sl_hash_bytes(const void *bytes, size_t len)
{
    const uint8_t *p = bytes, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = (uint64_t)0 - P1;
        for (; end - p >= 32; p += 32) {
            v1 = xxround(v1, rd64(p));
            v2 = xxround(v2, rd64(p + 8));
            v3 = xxround(v3, rd64(p + 16));
            v4 = xxround(v4, rd64(p + 24));
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = xxmerge(h, v1);
        h = xxmerge(h, v2);
        h = xxmerge(h, v3);
        h = xxmerge(h, v4);
    } else {
        h = P5;
    }
    h += (uint64_t)len;
    for (; end - p >= 8; p += 8)
        h = rotl(h ^ xxround(0, rd64(p)), 27) * P1 + P4;
    if (end - p >= 4) {
        h = rotl(h ^ (uint64_t)rd32(p) * P1, 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; p++)
        h = rotl(h ^ *p * P5, 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}
