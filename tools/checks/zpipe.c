/* zpipe: stdin -> stdout filter over gad's zlib/gzip/PNG code, built and driven by
 * tools/checks/check_deflate.py to check that Python's zlib, gzip and PIL accept our output
 * (and that we accept theirs). Not part of the library or of `make test`.
 *   zpipe z LEVEL      zlib-compress       zpipe d   zlib-decompress
 *   zpipe g LEVEL      gzip                zpipe u   gunzip
 *   zpipe p W H C OUT  raw 8-bit pixels [H,W,C] on stdin -> PNG file OUT */
#include "core/err.h"
#include "io/image.h"
#include "io/zlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    size_t n = 0, cap = 1 << 16, r;
    unsigned char *in = xmalloc(cap), *out = NULL;
    while ((r = fread(in + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) in = xrealloc(in, cap *= 2);
    }
    size_t len = 0;
    int rc = 0;
    char m = argc > 1 ? argv[1][0] : '?';
    if (m == 'z' && argc > 2) zlib_compress(in, n, atoi(argv[2]), &out, &len);
    else if (m == 'g' && argc > 2) zlib_gzip(in, n, atoi(argv[2]), &out, &len);
    else if (m == 'd') rc = zlib_decompress(in, n, (size_t)1 << 30, &out, &len);
    else if (m == 'u') rc = zlib_gunzip(in, n, (size_t)1 << 30, &out, &len);
    else if (m == 'p' && argc > 5) {
        Image im = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), in};
        if ((size_t)im.w * im.h * im.c != n) { fprintf(stderr, "zpipe: wrong pixel count\n"); return 2; }
        rc = png_write(argv[5], &im);
    } else {
        fprintf(stderr, "usage: zpipe z|g LEVEL | d | u | p W H C OUT\n");
        return 2;
    }
    if (rc) { fprintf(stderr, "zpipe: %s\n", err_get()); return 1; }
    if (out) fwrite(out, 1, len, stdout);
    free(in);
    free(out);
    return 0;
}
