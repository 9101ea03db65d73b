/* image: 8-bit images in memory, read from JPEG / PNG / PPM / PGM files (chosen by
 * their magic bytes, never by the extension; JPEG in io/jpeg.h), written as PNG,
 * and turned into the float [3,h,w] input of a model: torchvision's Resize +
 * CenterCrop on PIL images (Pillow's antialiased bilinear resize), or gad's own
 * bilinear resize like torch.nn.functional.interpolate(mode='bilinear',
 * align_corners=False); see ImagePrep.
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
/* Pillow's Image.resize((ow, oh), Image.BILINEAR) of 8-bit samples, as torchvision's
 * Resize does on a PIL image: a triangle filter stretched by the scale when
 * shrinking (antialiasing), coefficients in 22-bit fixed point, the horizontal pass
 * first and rounded to 8 bits, then the vertical one (libImaging/Resample.c, the
 * same integer steps, so the same bytes). src has c = 1 (gray) or 3 (RGB), as
 * torchvision resizes after convert('RGB'); dst gets a new [oh,ow,c] buffer (the
 * caller frees with image_free). Sizes >= 1. */
void image_resize_pil(const Image *src, int ow, int oh, Image *dst);

/* The preprocessing of an image into a model input [3,h,w].
 * torchvision's evaluation pipeline, when resize or crop is set:
 *   convert('RGB') -> Resize -> CenterCrop -> ToTensor -> Normalize, with
 *   Resize(N): the shorter side to N, the longer to int(N * long / short);
 *   Resize((H,W)): to H x W; both by image_resize_pil. CenterCrop((H,W)): offsets
 *   round((size - crop) / 2) with Python's round (half to even), zero padding
 *   where the crop is larger than the image (as torchvision pads). The result
 *   must be the model's h x w (image_prepare refuses otherwise).
 * gad's own pipeline, when neither is set (what `gad train` feeds): convert('RGB'),
 *   scale to [0,1], then F.interpolate(bilinear, align_corners=False, no
 *   antialiasing) to h x w when the size differs.
 * Then (v - mean[k]) / std[k] when mean and std are given. */
typedef struct {
    int resize_short;      /* > 0: Resize(N) */
    int resize_h, resize_w;/* > 0: Resize((H, W)) (resize_short must be 0) */
    int crop_h, crop_w;    /* > 0: CenterCrop((H, W)) */
    const float *mean, *std; /* [3] each or NULL */
} ImagePrep;

/* 1 when p asks for torchvision's pipeline (resize or crop set). */
int image_prep_torchvision(const ImagePrep *p);
/* The size (width *ow, height *oh) p makes of an iw x ih image: the crop, else the
 * resize's output, else (gad's pipeline) the image's own size. */
void image_prep_size(const ImagePrep *p, int iw, int ih, int *ow, int *oh);
/* img (c = 1..4) preprocessed by p into out [3,h,w] (caller-allocated). Returns 0,
 * or -1 with err set ("NAME: ...") when torchvision's pipeline does not end at
 * h x w (e.g. Resize(N) without a crop on an image of another aspect ratio). */
int image_prepare(const Image *img, const ImagePrep *p, int h, int w, const char *name, float *out);

/* Model input from an image: RGB as PIL's convert('RGB') (gray repeated, alpha
 * dropped), scaled to [0,1], resized to h x w when the size differs, then
 * (v - mean[k]) / std[k] if mean and std are given (either may be NULL for none).
 * out is [3,h,w], caller-allocated. */
void image_to_input(const Image *img, int h, int w, const float *mean, const float *std, float *out);

#endif
