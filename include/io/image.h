/* image: 8-bit images in memory, read from PNG / PPM / PGM files (chosen by their
 * magic bytes, never by the extension), written as PNG, and turned into the float
 * [3,h,w] input of a model (PIL's convert('RGB'), then a bilinear resize like
 * torch.nn.functional.interpolate(mode='bilinear', align_corners=False)).
 * PNG read: every colour type and bit depth of the standard (1/2/4-bit gray and
 *   palette are expanded, 16-bit samples keep their high byte), all five filters,
 *   Adam7 interlacing; every chunk's CRC is checked; tRNS and other ancillary
 *   chunks are ignored; a palette image becomes RGB, so channels are 1-4.
 * PNM read: P2/P5 (gray) and P3/P6 (RGB), maxval <= 255 (scaled to 0..255 when it
 *   is not 255); P1/P4 bitmaps and 16-bit files are refused.
 * PNG write: 8-bit gray, gray+alpha, RGB or RGBA, a filter chosen per row, zlib
 *   from io/zlib.h, written atomically.
 * Limits, checked before any pixel buffer is allocated: width and height
 * <= IMAGE_MAX_DIM, width * height <= IMAGE_MAX_PIXELS, files <= IMAGE_MAX_FILE.
 * Not for: colour management (gAMA, iCCP... are ignored), animation, writing PNM. */
#ifndef GAD_IO_IMAGE_H
#define GAD_IO_IMAGE_H
#include <stddef.h>

#define IMAGE_MAX_DIM 16384
#define IMAGE_MAX_PIXELS (1L << 26)
#define IMAGE_MAX_FILE ((size_t)1 << 30)

typedef struct {
    int w, h;             /* width, height in pixels */
    int c;                /* channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    unsigned char *data;  /* [h,w,c] interleaved, row-major (owned: image_free) */
} Image;

/* Read and decode PATH by its magic bytes. Returns 0, or -1 with err_get() =
 * "PATH: reason" (nothing allocated). The caller frees with image_free(). */
int image_load(const char *path, Image *img);
/* The same from memory; `name` is used in messages. */
int image_decode(const unsigned char *buf, size_t n, const char *name, Image *img);
int png_decode(const unsigned char *buf, size_t n, const char *name, Image *img);
int pnm_decode(const unsigned char *buf, size_t n, const char *name, Image *img);
void image_free(Image *img);

/* Encode img (c = 1..4, 8-bit) as PNG into a new buffer *out (caller frees).
 * Returns 0 or -1 (err set: bad size or channel count). */
int png_encode(const Image *img, unsigned char **out, size_t *out_len);
/* png_encode, then write PATH atomically. Returns 0 or -1 (err set). */
int png_write(const char *path, const Image *img);

/* Bilinear resize of src [c,ih,iw] into dst [c,oh,ow] with half-pixel centres and
 * no antialiasing (torch's interpolate, align_corners=False). Sizes >= 1. */
void image_resize_bilinear(const float *src, int c, int ih, int iw, float *dst, int oh, int ow);
/* Model input from an image: RGB as PIL's convert('RGB') (gray repeated, alpha
 * dropped), scaled to [0,1], resized to h x w when the size differs, then
 * (v - mean[k]) / std[k] if mean and std are given (either may be NULL for none).
 * out is [3,h,w], caller-allocated. */
void image_to_input(const Image *img, int h, int w, const float *mean, const float *std, float *out);

#endif
