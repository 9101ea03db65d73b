/* fuzz_pnm: the PGM/PPM decoder (io/image.h) on arbitrary bytes, through
 * image_decode (dispatch by magic). A decoded image is also turned into a small
 * model input (RGB conversion and bilinear resize). */
#include "fuzz.h"
#include "io/image.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    Image img;
    if (image_decode(d, n, "fuzz.pnm", &img) != 0) {
        fuzz_check_err();
        FUZZ_CHECK(img.data == NULL);
        return 0;
    }
    FUZZ_CHECK(img.w >= 1 && img.h >= 1 && img.c >= 1 && img.c <= 4 && img.data);
    float x[3 * 5 * 7];
    image_to_input(&img, 5, 7, NULL, NULL, x);
    for (int i = 0; i < 3 * 5 * 7; i++) FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
    image_free(&img);
    return 0;
}
