/* rng: small deterministic random numbers (splitmix64 seeding, xoshiro128+ style
 * stream) so that shuffles, dropout masks, initialisation and SmoothGrad noise are
 * reproducible on every platform. Not cryptographic, not PyTorch's generator. */
#ifndef GAD_CORE_RNG_H
#define GAD_CORE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[2]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
float rng_uniform(Rng *r);              /* [0, 1) with 24 random bits */
float rng_normal(Rng *r);               /* standard normal (Box-Muller) */
uint32_t rng_below(Rng *r, uint32_t n); /* uniform in [0, n), n > 0 */
void rng_shuffle(Rng *r, int *a, int n);

#endif
